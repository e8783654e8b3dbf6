/* Week 7 site: glue between the locally served widget manager, require.js and MathJax 3 (loaded before
 * the widget manager by _config.yml's nb_ipywidgets_js).
 * 1. The widget manager (AMD bundle) asks require.js for its fonts relative to the page; map its module
 *    path to the copy the site serves, whatever the page's depth.
 * 2. The widget manager typesets labels through the MathJax 2 API (MathJax.Hub.Queue); the site runs
 *    MathJax 3, which has no Hub. Provide the one call it needs, on top of MathJax 3's typesetPromise. */
(function () {
  var me = document.currentScript && document.currentScript.src;
  var base = me ? me.replace(/w7-compat\.js(\?.*)?$/, "") : "";
  if (window.require && window.require.config) {
    window.require.config({ paths: { "@jupyter-widgets/html-manager/dist": base + "vendor/html-manager" } });
  }
  function shim() {
    var MJ = window.MathJax;
    if (!MJ || MJ.Hub || !MJ.version) return;
    MJ.Hub = {
      Queue: function () {
        for (var i = 0; i < arguments.length; i++) {
          var job = arguments[i];
          if (Array.isArray(job) && job[0] === "Typeset" && MJ.typesetPromise) {
            var el = job[2] || job[1];
            var go = function () { return MJ.typesetPromise(el && el.nodeType ? [el] : undefined); };
            (MJ.startup && MJ.startup.promise ? MJ.startup.promise.then(go) : go()).catch(function () {});
          }
        }
      },
      Config: function () {},
    };
  }
  shim();
  document.addEventListener("DOMContentLoaded", shim);
})();
