"""Scaling-law formulas and compute estimates used by the chapters on what scale buys.

What is here (every constant carries its source):

- ``training_flops(N, D)``: the standard estimate C = 6ND for one pass over D tokens with N parameters
  (2ND for the forward pass, 4ND for the backward pass; Kaplan et al. 2020, section 2.1).
- Kaplan et al. 2020 (arXiv:2001.08361), fitted on WebText2 with GPT-2's tokenizer, N counting non-embedding
  parameters: ``kaplan_loss_n``, ``kaplan_loss_d``, ``kaplan_loss_c`` (compute-efficient frontier),
  ``kaplan_loss_nd`` and ``kaplan_optimal`` (N_opt = 1.3e9 (C / PF-day)^0.73, with D = C / 6N).
- Hoffmann et al. 2022 (Chinchilla, arXiv:2203.15556): the parametric fit L(N, D) = E + A/N^alpha + B/D^beta of
  their approach 3 (``chinchilla_loss``), its closed-form compute-optimal allocation, and the "about 20 tokens per
  parameter" rule that approaches 1 and 2 give (``chinchilla_optimal``).
- ``fit_power_law``: a least-squares fit of L = a N^(-alpha) (+ an optional floor) on log axes, for the live fit
  on the course's own model family.

Units: parameters and tokens are plain counts, compute is in FLOPs unless a name says PF-days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PF_DAY = 1e15 * 86400  # FLOPs in one petaflop/s-day: 8.64e19

# Kaplan et al. 2020, Table 5 / equations (1.1)-(1.3) and (1.5); section 6.1 for N_opt(C_min).
KAPLAN = dict(alpha_n=0.076, n_c=8.8e13, alpha_d=0.095, d_c=5.4e13, alpha_c=0.050, c_c_pf_days=3.1e8,
              n_opt_coef=1.3e9, n_opt_exp=0.73)

# Hoffmann et al. 2022, equation (10) (approach 3, parametric fit).
CHINCHILLA = dict(e=1.69, a=406.4, b=410.7, alpha=0.34, beta=0.28)
CHINCHILLA_TOKENS_PER_PARAM = 20.0  # approaches 1 and 2 (Table 3): Chinchilla itself is 70B params on 1.4T tokens


def _positive(name: str, x) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be a positive, finite number (or array of them); got {x!r}. "
                         f"Counts are plain numbers, for example 175e9 parameters or 300e9 tokens.")
    return arr


def _out(arr: np.ndarray):
    return float(arr) if arr.ndim == 0 else arr


def training_flops(n_params, n_tokens):
    """Training compute C = 6 N D in FLOPs (forward 2ND, backward 4ND; attention FLOPs ignored)."""
    return _out(6.0 * _positive("n_params", n_params) * _positive("n_tokens", n_tokens))


def flops_to_pf_days(flops):
    """FLOPs to petaflop/s-days, the unit of Kaplan et al. and of GPT-3's Table D.1."""
    return _out(_positive("flops", flops) / PF_DAY)


def kaplan_loss_n(n_params):
    """L(N) = (N_c / N)^alpha_N: loss (nats/token) of a model with N non-embedding parameters, trained to
    convergence on enough data (Kaplan et al. 2020, eq. 1.1)."""
    n = _positive("n_params", n_params)
    return _out((KAPLAN["n_c"] / n) ** KAPLAN["alpha_n"])


def kaplan_loss_d(n_tokens):
    """L(D) = (D_c / D)^alpha_D: loss of a large model trained with early stopping on D tokens (eq. 1.2)."""
    d = _positive("n_tokens", n_tokens)
    return _out((KAPLAN["d_c"] / d) ** KAPLAN["alpha_d"])


def kaplan_loss_c(flops):
    """L(C_min) = (C_c / C_min)^alpha_C on the compute-efficient frontier (eq. 1.3); C in FLOPs."""
    c = _positive("flops", flops) / PF_DAY
    return _out((KAPLAN["c_c_pf_days"] / c) ** KAPLAN["alpha_c"])


def kaplan_loss_nd(n_params, n_tokens):
    """L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D, the joint law with overfitting (eq. 1.5)."""
    n, d = _positive("n_params", n_params), _positive("n_tokens", n_tokens)
    k = KAPLAN
    return _out(((k["n_c"] / n) ** (k["alpha_n"] / k["alpha_d"]) + k["d_c"] / d) ** k["alpha_d"])


def chinchilla_loss(n_params, n_tokens):
    """L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, approach 3, eq. 10)."""
    n, d = _positive("n_params", n_params), _positive("n_tokens", n_tokens)
    c = CHINCHILLA
    return _out(c["e"] + c["a"] / n ** c["alpha"] + c["b"] / d ** c["beta"])


@dataclass(frozen=True)
class Allocation:
    """A compute budget split into a model size and a token count, with C = 6 N D."""

    flops: float      # the budget C, FLOPs
    n_params: float   # model size N
    n_tokens: float   # training tokens D
    rule: str         # which law gave it

    @property
    def tokens_per_param(self) -> float:
        return self.n_tokens / self.n_params


def kaplan_optimal(flops) -> Allocation:
    """Kaplan et al. 2020 (section 6.1, Fig. 14): N_opt = 1.3e9 (C_min / PF-day)^0.73, and D = C / 6N.

    N here counts non-embedding parameters; the paper fitted it on models of up to about 1.5e9 parameters, so large
    budgets are an extrapolation.
    """
    c = float(_positive("flops", flops))
    n = KAPLAN["n_opt_coef"] * (c / PF_DAY) ** KAPLAN["n_opt_exp"]
    return Allocation(c, n, c / (6.0 * n), "Kaplan et al. 2020")


def chinchilla_optimal(flops, method: str = "rule") -> Allocation:
    """The compute-optimal N and D for a budget C (FLOPs) according to Hoffmann et al. 2022.

    method="rule": D = 20 N (approaches 1 and 2, Table 3), so N = sqrt(C / 120).
    method="fit": minimise the approach-3 parametric loss under C = 6ND, which has the closed form
    N = G (C/6)^(beta/(alpha+beta)), D = (C/6) / N, with G = (alpha A / (beta B))^(1/(alpha+beta)).
    """
    c = float(_positive("flops", flops))
    if method == "rule":
        n = np.sqrt(c / (6.0 * CHINCHILLA_TOKENS_PER_PARAM))
        return Allocation(c, float(n), float(CHINCHILLA_TOKENS_PER_PARAM * n), "Hoffmann et al. 2022 (20 tokens/param)")
    if method == "fit":
        k = CHINCHILLA
        g = (k["alpha"] * k["a"] / (k["beta"] * k["b"])) ** (1.0 / (k["alpha"] + k["beta"]))
        n = g * (c / 6.0) ** (k["beta"] / (k["alpha"] + k["beta"]))
        return Allocation(c, float(n), float(c / (6.0 * n)), "Hoffmann et al. 2022 (parametric fit)")
    raise ValueError(f"method must be 'rule' or 'fit', got {method!r}")


@dataclass(frozen=True)
class PowerLawFit:
    """L(N) = floor + a * N^(-alpha), fitted on log axes."""

    a: float
    alpha: float
    floor: float
    r2: float  # coefficient of determination of the log-log fit

    def __call__(self, n):
        return self.floor + self.a * np.asarray(n, dtype=float) ** (-self.alpha)


def fit_power_law(n_params, losses, floor: float = 0.0) -> PowerLawFit:
    """Least-squares fit of log(L - floor) = log a - alpha log N.

    Args:
        n_params: model sizes, shape (k,), k >= 2, all positive.
        losses: losses at those sizes, shape (k,), all above ``floor``.
        floor: an irreducible loss to subtract first (0 for a pure power law, as in Kaplan et al.).
    """
    n = _positive("n_params", n_params).ravel()
    loss = np.asarray(losses, dtype=float).ravel()
    if n.shape != loss.shape or n.size < 2:
        raise ValueError(f"need at least two (size, loss) pairs of equal length; got {n.size} sizes and "
                         f"{loss.size} losses")
    if np.any(loss - floor <= 0):
        raise ValueError(f"every loss must be above floor={floor}; the smallest is {loss.min():.4g}. Lower the floor.")
    x, y = np.log(n), np.log(loss - floor)
    slope, intercept = np.polyfit(x, y, 1)
    pred = intercept + slope * x
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return PowerLawFit(a=float(np.exp(intercept)), alpha=float(-slope), floor=float(floor), r2=r2)


# ---------------------------------------------------------------------------------------------------------------
# The data tables behind the chapters (src/week7/data/*.csv): loaded and checked here, so that a chapter never
# pastes a number from outside the course without its source.
# ---------------------------------------------------------------------------------------------------------------
STATUSES = ("disclosed", "estimated", "rumoured")
VERDICTS = ("corrected", "context", "unverifiable")


def _data(name: str):
    from importlib.resources import files

    return files("week7") / "data" / name


def load_llm_scale():
    """Models over time (pandas DataFrame): parameters, tokens, training FLOPs, date, source key and a status.

    ``status`` is disclosed (the developer published the numbers), estimated (a third party or we computed them)
    or rumoured (press reports only). Where ``flops_basis`` is "6ND" the compute column is filled here from
    6 x (active) parameters x tokens rather than stored, so it cannot drift from the other two columns.
    """
    import pandas as pd

    df = pd.read_csv(_data("llm_scale.csv"), parse_dates=["date"])
    bad = sorted(set(df.status) - set(STATUSES))
    if bad:
        raise ValueError(f"llm_scale.csv: unknown status {bad}; use one of {STATUSES}")
    if df.source.isna().any():
        raise ValueError(f"llm_scale.csv: rows without a source: {df.model[df.source.isna()].tolist()}")
    derive = df.flops_basis.eq("6ND")
    n_used = df.active_parameters.fillna(df.parameters)
    df.loc[derive, "training_flops"] = 6.0 * n_used[derive] * df.training_tokens[derive]
    df["tokens_per_param"] = df.training_tokens / n_used
    return df


def load_production_claims():
    """The slide's production claims, each with what was measured, its date, source key and a verdict."""
    import pandas as pd

    df = pd.read_csv(_data("production_claims.csv"), parse_dates=["as_of"])
    bad = sorted(set(df.verdict) - set(VERDICTS))
    if bad:
        raise ValueError(f"production_claims.csv: unknown verdict {bad}; use one of {VERDICTS}")
    return df
