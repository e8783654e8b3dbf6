"""Exercise 04's external probes (instructor-only: never released, not copied into the sandbox's working folder).

autograder/probe.py runs each probe's code after the student's definitions in a fresh sandboxed python process,
on one thread, with an address-space limit of the baseline after the imports (about 600 MB) plus `memory_mb`.

sparse-attention-memory: block_sparse_attention at n = 16384 (B = 1, H = 4, d = 8; w = 8, s = 32, g = 8,
block_size = 512), without gradients. Measured on the course machine (2 cores): the solution's peak address space
grows 49 MB above the baseline in 0.75 s of compute; dense attention under the pattern needs the 4 x 16384^2
float32 scores (4 GiB) and the (n, n) int64 index differences of the mask (2 GiB); a query-block loop over all keys
(block x n scores, no sparsity) grew 704 MB. The limit, 192 MB above the baseline, sits between: 4x the
solution's need, a quarter of the chunked-dense one's. The records are values (rows of the output and its sums),
so the only way to record them is to compute them within the limit.

sparse-attention-nnz: pattern_nnz at n = 1_000_003 with the default 64 MB: the solution holds a few int64 vectors
of n (24 MB each); the n x n mask would take 9 TB.
"""

PROBES = [
    {
        "grade_id": "sparse-attention-memory",
        "case": "probe n=16384 rows",
        "memory_mb": 256,
        "timeout_s": 90,
        "code": '''
gen = torch.Generator().manual_seed(40)
B, H, n, d = 1, 4, 16384, 8
q, k, v = (torch.randn(B, H, n, d, generator=gen) for _ in range(3))
out = block_sparse_attention(q, k, v, 8, 32, 8, block_size=512)
record("probe n=16384 rows", out[:, :, ::331].contiguous(), rtol=1e-4, atol=1e-5)
record("probe n=16384 sums", out.double().sum(dim=(0, 1, 3)).float()[::97].contiguous(), rtol=1e-4, atol=1e-4)
''',
    },
    {
        "grade_id": "sparse-attention-nnz",
        "case": "probe nnz n=1000003",
        "memory_mb": 256,
        "timeout_s": 60,
        "code": '''
record("probe nnz n=1000003", pattern_nnz(1_000_003, 128, 97, 300))
''',
    },
]
