"""Golden values for test/golden.test.ts, computed with numpy from the published formulas.

Mirrors diffusers' DPMSolverMultistepScheduler as LatentLM configures it (beta_schedule
"squaredcos_cap_v2", solver_order 2, algorithm "dpmsolver++", solver_type "midpoint",
lower_order_final, final_sigmas_type "zero", timestep_spacing "linspace"), including its float32
storage of betas, alphas_cumprod and sigmas. Run: python3 scripts/golden_values.py
"""
import math
import json
import numpy as np

T = 1000

def alpha_bar(u):
    return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

betas = np.array([min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), 0.999) for i in range(T)], dtype=np.float32)
# torch.cumprod on CPU accumulates float32 inputs in double and stores float32
acp = np.cumprod((np.float32(1.0) - betas).astype(np.float64)).astype(np.float32)
# float64 versions for the schedule golden values
betas64 = np.array([min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), 0.999) for i in range(T)], dtype=np.float64)
acp64 = np.cumprod(1.0 - betas64)

def timesteps_for(n, lambda_min_clipped=-math.inf):
    # lambda_t = log(alpha_t) - log(sigma_t) in float32, as diffusers; searchsorted on the flipped array
    lam = (np.log(np.sqrt(acp)) - np.log(np.sqrt(np.float32(1) - acp))).astype(np.float32)
    clipped_idx = int(np.searchsorted(lam[::-1], lambda_min_clipped))
    last = T - clipped_idx
    return np.linspace(0, last - 1, n + 1).round()[::-1][:-1].copy().astype(np.int64)

def dpm_solver(x, n, m, s, pred="epsilon"):
    ts = timesteps_for(n)
    sig_all = np.array(((np.float32(1) - acp) / acp) ** np.float32(0.5), dtype=np.float32)
    sigmas = np.interp(ts, np.arange(0, len(sig_all)), sig_all)
    sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32).astype(np.float64)
    def a_s(sig):
        a = 1 / (sig ** 2 + 1) ** 0.5
        return a, sig * a
    outs = []
    lower = 0
    for i, t in enumerate(ts):
        ab = float(acp[t])  # the float32 value, as stored
        V = ab * s * s + 1 - ab
        a_t, s_t = a_s(sigmas[i])
        if pred == "epsilon":
            eps = math.sqrt(1 - ab) * (x - math.sqrt(ab) * m) / V
            x0 = (x - s_t * eps) / a_t
        else:  # v* = sqrt(ab) E[eps|x] - sqrt(1-ab) E[x0|x]
            v = math.sqrt(1 - ab) * (math.sqrt(ab) * (x - math.sqrt(ab) * m) * (1 - s * s) / V - m)
            x0 = a_t * x - s_t * v
        outs.append(x0)
        lof = i == len(ts) - 1  # final sigma zero => lower order final always
        at, st = a_s(sigmas[i + 1])
        as0, ss0 = a_s(sigmas[i])
        with np.errstate(divide='ignore'):
            lt = math.log(at) - (math.log(st) if st > 0 else -math.inf)
        ls0 = math.log(as0) - math.log(ss0)
        h = lt - ls0
        if lower < 1 or lof:
            x = (st / ss0) * x - (at * (math.exp(-h) - 1.0)) * x0
        else:
            as1, ss1 = a_s(sigmas[i - 1])
            ls1 = math.log(as1) - math.log(ss1)
            r0 = (ls0 - ls1) / h
            D0, D1 = outs[-1], (1.0 / r0) * (outs[-1] - outs[-2])
            x = (st / ss0) * x - (at * (math.exp(-h) - 1.0)) * D0 - 0.5 * (at * (math.exp(-h) - 1.0)) * D1
        lower = min(lower + 1, 2)
    return x

out = {
    "alphas_cumprod": {str(i): float(acp64[i]) for i in [0, 1, 9, 99, 249, 499, 749, 899, 998, 999]},
    "betas": {str(i): float(betas64[i]) for i in [0, 1, 499, 998, 999]},
    "timesteps": {str(n): timesteps_for(n).tolist() for n in [1, 2, 5, 10, 20]},
    "timesteps_clipped": {str(l): timesteps_for(10, l).tolist() for l in [-5.1, -3.0]},
    "sigmas20": [float(v) for v in np.interp(timesteps_for(20), np.arange(T), ((np.float32(1) - acp) / acp) ** np.float32(0.5)).astype(np.float32)],
    "alphas_cumprod_f32": {str(i): float(acp[i]) for i in [0, 499, 998, 999]},
}
xs = np.array([-2.0, -0.5, 0.0, 0.7, 1.5])
out["dpm_gaussian"] = {"m": 0.7, "s": 0.5, "xT": xs.tolist(),
                       **{str(n): dpm_solver(xs.copy(), n, 0.7, 0.5).tolist() for n in [1, 5, 10, 20]}}
out["dpm_gaussian_v"] = {str(n): dpm_solver(xs.copy(), n, 0.7, 0.5, "v").tolist() for n in [1, 5, 10, 20]}
# add_noise / get_velocity at t = 499 for x0 = [1, -2], eps = [0.5, 0.25]
ab = acp64[499]
x0 = np.array([1.0, -2.0]); e = np.array([0.5, 0.25])
out["add_noise_499"] = (math.sqrt(ab) * x0 + math.sqrt(1 - ab) * e).tolist()
out["velocity_499"] = (math.sqrt(ab) * e - math.sqrt(1 - ab) * x0).tolist()
print(json.dumps(out, indent=1))
