# PyTorch peer of bench/workloads.ts: the same experiment-shaped steps (shapes, parameter counts,
# optimizer) on the CPU, so that `pnpm bench` can put both in one table.
#
# usage: python3 workloads_torch.py [--threads N] [--steps S] [--only name,name] [--warmup W] [--warmup-s SEC]
#        [--device cpu|cuda]
#   --warmup W: untimed steps before the timed ones (default 1); --warmup-s SEC: at least 2 untimed
#   steps and more until SEC seconds have passed (at most 500; bench/run.ts's rule for both sides)
#   --serve: after the torch line, read commands from stdin, one a line, and answer each with a JSON line
#   (bench/paired.ts interleaves blocks of steps with ours this way): "warm <name> <sec>" (the rule
#   above), "run <name> <k>" (k timed steps: {"name", "params", "msAll"}), "quit".
# Prints one JSON line describing torch (version, threads, the BLAS it links), then one JSON line per
# workload: {"name", "params", "msAll", "warmupMs", "warmupSteps"}. Tensors are NCHW here (PyTorch's layout) and NHWC
# in the TypeScript version; every other choice follows workloads.ts and @mmlm/liquid:
#   liquid-vq-tokenizer  taming-style encoder / decoder (no attention), GroupNorm(4, 16, eps 1e-6),
#                        swish, pad (0, 1, 0, 1) + stride-2 conv, nearest x2 + conv; VQ K 64 x 8 with
#                        an EMA codebook (decay 0.99, eps 1e-5), dead-code restart after 20 unused
#                        steps, loss mse + 0.25 commitment, grad clip 1, AdamW 2e-3 (0.9, 0.95) wd 0.
#                        (Ours runs a k-means codebook init on its first, warm-up, step; not here.)
#   liquid-vq-tokenizer-32px  the same at the lab's small preset: 32 px, ch 32 (8 groups per GroupNorm).
#   lm-LxD-TT[-bN]       RoPE (half rotation), RMSNorm eps 1e-6, SwiGLU, no biases, untied head,
#                        4 heads, dropout 0.1, vocab 128; cross-entropy, clip 1, AdamW 3e-3
#                        (0.9, 0.95) eps 1e-8, weight decay 0.1 on matrices only. -bN: N rows a
#                        step instead of B (lm-4x128-T80-b32: lab.image-tokens small's discrete arm).
#   gen-2x64-cfg         eval, no_grad, KV cache, 2B = 32 CFG rows, padding mask, 16 new tokens,
#                        CFG 1.5, temperature 0.5, top-p 0.96, ids 64..127 only.
#   latentlm-vae-32px    @mmlm/latentlm's ImageVAE (sigma posterior) at the lab's small preset, NHWC as
#                        ours (no convolutions): patchify 8 x 8 -> Linear -> + pos -> 2 pre-norm ViT blocks
#                        (LayerNorm eps 1e-5, fused qkv with bias, exact GELU MLP 4x) -> LayerNorm -> Linear
#                        to 16; z = mu + (s 0.1 / 0.8) eps, s ~ N(0, 1) per image; decoder Linear -> + pos ->
#                        2 blocks -> LayerNorm -> Linear -> tanh -> Linear -> unpatchify; loss mse +
#                        1e-3 mean(mu^2), clip 1, AdamW (0.9, 0.99) eps 1e-8, wd 0.01 on matrices only, lr
#                        warmup-cosine 2e-3 (50 / 1500 steps). Every parameter trainable.
#   latentlm-lm-4x128    LatentLM at the arm's stage 2: RMSNorm eps 1e-6 (gains), SwiGLU 320, interleaved RoPE
#                        with linspace frequencies, no biases, dropout 0.1, untied head, vocab 36, learned image
#                        positions [16, 128] added at the span's positions; condition layer (RMSNorm without
#                        gain, Linear) on every position, gathered at the 256 latent targets, each repeated 4x;
#                        head: timestep sinusoid 256 (cos, sin) -> Linear -> SiLU -> Linear, Linear(x_t), 3
#                        adaLN-Zero SwiGLU blocks, adaLN final layer; v target; L = CE + 5 MSE; clip 1, AdamW
#                        (0.9, 0.98) eps 1e-8, wd 0.1 on matrices only, lr warmup-cosine 3e-3 (100 / 6000).
#                        Every parameter trainable.
#   maskllm-mask-step    @mmlm/maskllm's small decoder (LayerNorm eps 1e-5, learned positions, GELU-tanh MLP,
#                        biases, untied head, vocab 35, T 64) with every block linear 2:4-masked: frozen
#                        weight and bias (requires_grad False), trainable logits [out * in / 4, 6]; mask =
#                        softmax((kappa logits + g) / tau) @ S, g Gumbel (u in [1e-7, 1 - 1e-7]), one sample per
#                        layer per step; loss CE - lambda_t sum ||W * M||^2; clip 1 over the logits, AdamW
#                        (0.9, 0.95) eps 1e-5 wd 0.1, cosine lr 5e-3 -> 5e-4 over 300 steps, tau / kappa linear.
# "params" counts every nn.Parameter, frozen ones included (as ours: Module.numParameters()); buffers
# (the VQ codebook, the candidate set S) are not parameters on either side.
import argparse, json, math, os, re, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument('--threads', type=int, default=1)
ap.add_argument('--steps', type=int, default=5)
ap.add_argument('--only', type=str, default='')
ap.add_argument('--warmup', type=int, default=1)
ap.add_argument('--warmup-s', type=float, default=None)
ap.add_argument('--serve', action='store_true')
ap.add_argument('--device', type=str, default='cpu')
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)
B = 16
if args.device != 'cpu':
    # every tensor and module below is created on the device (torch >= 2.0); fp32 throughout, as
    # tfjs runs: no TF32 in matmuls or convolutions
    torch.set_default_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def blas_libs():
    """The BLAS / LAPACK / oneDNN libraries mapped into this process, resolved through symlinks."""
    a = torch.randn(256, 256)
    _ = a @ a  # make sure the BLAS is loaded
    seen = []
    try:
        with open('/proc/self/maps') as f:
            for line in f:
                p = line.split()[-1] if len(line.split()) >= 6 else ''
                n = os.path.basename(p).lower()
                if any(k in n for k in ('blas', 'mkl', 'lapack', 'dnnl', 'gomp', 'omp')):
                    r = os.path.realpath(p)
                    if r not in seen:
                        seen.append(r)
    except OSError:
        pass
    return seen


def config_field(key):
    m = re.search(re.escape(key) + r'=([^,\s]+)', torch.__config__.show())
    return m.group(1) if m else None


libs = blas_libs()
# numpy's own OpenBLAS (numpy.libs / scipy_openblas) is mapped whenever numpy is imported and is not
# the one torch calls: pip wheels of torch link MKL statically (BLAS_INFO=mkl, no separate library)
torch_libs = [l for l in libs if 'numpy.libs' not in l and 'scipy_openblas' not in l]
blas_lib = next((l for l in torch_libs if 'blas' in os.path.basename(l).lower() or 'blas' in l.lower()), None)
blas_info = config_field('BLAS_INFO')
blas_name = (
    'OpenBLAS' if blas_lib and 'openblas' in blas_lib.lower()
    else 'MKL' if any('mkl' in l for l in torch_libs)
    else 'MKL (linked into libtorch)' if blas_info == 'mkl' and not blas_lib
    else (blas_lib or blas_info or 'unknown'))


def blas_threads(lib):
    """OpenBLAS' own thread count (openblas_get_num_threads), or None for another BLAS.

    torch.set_num_threads bounds torch's OpenMP pool, not the threads of a BLAS that torch calls
    through libblas.so.3 (BLAS_INFO=generic, Debian's build): OpenBLAS pthread then runs every GEMM on
    all cores unless OPENBLAS_NUM_THREADS is set, so `pnpm bench` sets it to --threads (peers.ts).
    """
    if not lib or 'openblas' not in lib.lower():
        return None
    try:
        import ctypes
        return int(ctypes.CDLL(lib).openblas_get_num_threads())
    except (OSError, AttributeError):
        return None


gpu = torch.cuda.get_device_name(0) if args.device.startswith('cuda') else None
print(json.dumps({
    'peer': 'torch', 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'device': args.device, 'gpu': gpu,
    'cuda': torch.version.cuda if gpu else None,
    'blasInfo': blas_info, 'blas': blas_name, 'blasLib': blas_lib, 'libs': libs, 'blasThreads': blas_threads(blas_lib),
}), flush=True)


# ---------------------------------------------------------------------------------------------
# (a) Liquid's VQ tokenizer

def gn(c):
    return nn.GroupNorm(max(1, next(g for g in range(min(32, c // 4), 0, -1) if c % g == 0)), c, eps=1e-6)


class Resnet(nn.Module):
    def __init__(s, cin, cout):
        super().__init__()
        s.norm1, s.conv1 = gn(cin), nn.Conv2d(cin, cout, 3, padding=1)
        s.norm2, s.conv2 = gn(cout), nn.Conv2d(cout, cout, 3, padding=1)
        s.nin = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(s, x):
        h = s.conv2(F.silu(s.norm2(s.conv1(F.silu(s.norm1(x))))))
        return (s.nin(x) if s.nin is not None else x) + h


class Down(nn.Module):
    def __init__(s, c):
        super().__init__(); s.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(s, x):
        return s.conv(F.pad(x, (0, 1, 0, 1)))


class Up(nn.Module):
    def __init__(s, c):
        super().__init__(); s.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(s, x):
        return s.conv(F.interpolate(x, scale_factor=2, mode='nearest'))


class Tokenizer(nn.Module):
    """VQTokenizer of @mmlm/liquid at ch 16, chMult [1, 1, 1], numResBlocks 0, zChannels 16, codeDim 8, K 64."""

    def __init__(s, ch=16, levels=3, nres=0, zc=16, cd=8, K=64):
        super().__init__()
        s.K, s.cd = K, cd
        enc = [nn.Conv2d(3, ch, 3, padding=1)]
        for i in range(levels):
            enc += [Resnet(ch, ch) for _ in range(nres)]
            if i < levels - 1:
                enc.append(Down(ch))
        enc += [Resnet(ch, ch), Resnet(ch, ch)]
        s.enc = nn.Sequential(*enc)
        s.enc_norm, s.enc_out = gn(ch), nn.Conv2d(ch, zc, 3, padding=1)
        s.quant_conv, s.post_quant_conv = nn.Conv2d(zc, cd, 1), nn.Conv2d(cd, zc, 1)
        dec = [nn.Conv2d(zc, ch, 3, padding=1), Resnet(ch, ch), Resnet(ch, ch)]
        for i in reversed(range(levels)):
            dec += [Resnet(ch, ch) for _ in range(nres + 1)]
            if i > 0:
                dec.append(Up(ch))
        s.dec = nn.Sequential(*dec)
        s.dec_norm, s.dec_out = gn(ch), nn.Conv2d(ch, 3, 3, padding=1)
        e = torch.empty(K, cd).uniform_(-1 / K, 1 / K)
        s.register_buffer('codebook', e)  # EMA codebook: a buffer, as in core's VectorQuantizer
        s.register_buffer('cluster_size', torch.ones(K))
        s.register_buffer('embed_avg', e.clone())
        s.unused = [0] * K

    def quantize(s, z):  # z [B, cd, h, w]
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)  # [N, cd]
        e = s.codebook
        d = flat.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1)[None] - 2 * flat @ e.t()
        idx = d.argmin(1)
        q = e[idx]
        commit = F.mse_loss(flat, q.detach())
        zq = (flat + (q - flat).detach()).reshape(b, h, w, c).permute(0, 3, 1, 2)
        with torch.no_grad():
            counts = torch.bincount(idx, minlength=s.K).float()
            p = counts / idx.numel()
            perplexity = torch.exp(-(p * torch.log(p + 1e-10)).sum())
            usage = (counts > 0).float().mean()
            s.cluster_size.mul_(0.99).add_(counts, alpha=0.01)
            sums = torch.zeros_like(s.embed_avg).index_add_(0, idx, flat.detach())
            s.embed_avg.mul_(0.99).add_(sums, alpha=0.01)
            n = s.cluster_size.sum()
            smoothed = (s.cluster_size + 1e-5) / (n + s.K * 1e-5) * n
            s.codebook.copy_(s.embed_avg / smoothed[:, None])
            dead = []
            for k, c_ in enumerate(counts.tolist()):
                s.unused[k] = 0 if c_ > 0 else s.unused[k] + 1
                if s.unused[k] >= 20:
                    dead.append(k)
            if dead:
                pick = torch.randperm(flat.shape[0])[: len(dead)]
                s.codebook[torch.tensor(dead)] = flat.detach()[pick]
                for k in dead:
                    s.unused[k] = 0
        return zq, 0.25 * commit, usage, perplexity

    def forward(s, x):
        z = s.quant_conv(s.enc_out(F.silu(s.enc_norm(s.enc(x)))))
        zq, vq_loss, usage, perplexity = s.quantize(z)
        xrec = s.dec_out(F.silu(s.dec_norm(s.dec(s.post_quant_conv(zq)))))
        return xrec, vq_loss, usage, perplexity


def make_tokenizer(size=16, ch=16):
    m = Tokenizer(ch=ch)
    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0)
    x = torch.rand(B, 3, size, size) * 2 - 1
    t = [200]

    def step():
        xrec, vq_loss, usage, perplexity = m(x)
        rec = (xrec - x).pow(2).mean()
        loss = rec + vq_loss
        _ = (rec.item(), usage.item(), perplexity.item())  # ours reads these three each step
        opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        for g in opt.param_groups:  # the arm's cosine schedule (same cost as setLr)
            g['lr'] = 2e-4 + 0.5 * (2e-3 - 2e-4) * (1 + math.cos(math.pi * (t[0] - 100) / 900))
        opt.step()
        t[0] += 1
        return loss.item() + 0 * norm.item()

    return m, step


# ---------------------------------------------------------------------------------------------
# (b, c) the decoder LM (Liquid's buildLM shape on core's TransformerDecoder)

V, HEADS = 128, 4


def swiglu_hidden(dim, ratio=4, multiple=64):
    return max(multiple, (dim * ratio * 2 // 3) // multiple * multiple)


class RMSNorm(nn.Module):
    def __init__(s, d, eps=1e-6):
        super().__init__(); s.weight = nn.Parameter(torch.ones(d)); s.eps = eps

    def forward(s, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + s.eps) * s.weight


def rope_tables(T, hs, offset=0, base=10000.0):
    inv = 1.0 / (base ** (torch.arange(0, hs // 2, dtype=torch.float32) * 2 / hs))
    a = torch.arange(offset, offset + T, dtype=torch.float32)[:, None] * inv[None]  # [T, hs/2]
    return torch.cat([a.cos(), a.cos()], -1), torch.cat([a.sin(), a.sin()], -1)  # [T, hs]


def rope(x, cos, sin):  # x [B, H, T, hs], half rotation
    a, b = x.chunk(2, -1)
    return x * cos + torch.cat([-b, a], -1) * sin


class Block(nn.Module):
    def __init__(s, D, drop):
        super().__init__()
        s.D, s.hs = D, D // HEADS
        s.norm1, s.qkv, s.proj = RMSNorm(D), nn.Linear(D, 3 * D, bias=False), nn.Linear(D, D, bias=False)
        hid = swiglu_hidden(D)
        s.norm2, s.fc1, s.gate, s.fc2 = RMSNorm(D), nn.Linear(D, hid, bias=False), nn.Linear(D, hid, bias=False), nn.Linear(hid, D, bias=False)
        s.drop = nn.Dropout(drop)

    def forward(s, x, mask=None, cache=None, li=0):
        b, t, _ = x.shape
        q, k, v = s.qkv(s.norm1(x)).split(s.D, 2)
        q, k, v = [z.view(b, t, HEADS, s.hs).transpose(1, 2) for z in (q, k, v)]
        off = cache[li][0].shape[2] if cache is not None and cache[li] is not None else 0
        cos, sin = rope_tables(t, s.hs, off)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        if cache is not None:
            if cache[li] is not None:
                k, v = torch.cat([cache[li][0], k], 2), torch.cat([cache[li][1], v], 2)
            cache[li] = (k, v)
        S = k.shape[2]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(s.hs)
        if t > 1:
            causal = torch.ones(t, S, dtype=torch.bool).triu(S - t + 1)
            att = att.masked_fill(causal, float('-inf'))
        if mask is not None:
            att = att + mask
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, s.D)
        x = x + s.drop(s.proj(y))
        h = s.norm2(x)
        return x + s.drop(s.fc2(F.silu(s.fc1(h)) * s.gate(h)))


class LM(nn.Module):
    def __init__(s, L, D, drop=0.1):
        super().__init__()
        s.tok = nn.Embedding(V, D)
        s.blocks = nn.ModuleList([Block(D, drop) for _ in range(L)])
        s.norm, s.head = RMSNorm(D), nn.Linear(D, V, bias=False)
        for p in s.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(s, ids, mask=None, cache=None):
        x = s.tok(ids)
        for i, b in enumerate(s.blocks):
            x = b(x, mask, cache, i)
        return s.head(s.norm(x))


def make_lm(L, D, T, rows=None):
    m = LM(L, D)
    m.train()
    decay = [p for p in m.parameters() if p.dim() >= 2]
    no_decay = [p for p in m.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay}, {'params': no_decay, 'weight_decay': 0.0}], lr=3e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    R = rows or B
    x, y = torch.randint(0, V, (R, T)), torch.randint(0, V, (R, T))

    def step():
        loss = F.cross_entropy(m(x).view(-1, V), y.view(-1))
        opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss.item() + 0 * norm.item()

    return m, step


def make_generation(P=12, N=16, s=1.5, temp=0.5, top_p=0.96, codes=(64, 128)):
    m = LM(2, 64)
    m.eval()
    R = 2 * B
    ids0 = torch.randint(0, codes[0], (R, P))
    allowed = torch.full((V,), float('-inf'))
    allowed[codes[0]:codes[1]] = 0

    def filt(l):  # [B, V]: allowed ids, temperature, top-p (keep the smallest set with mass >= p)
        l = (l + allowed) / temp
        sl, si = l.sort(-1, descending=True)
        cum = sl.softmax(-1).cumsum(-1)
        drop = cum - sl.softmax(-1) >= top_p
        sl = sl.masked_fill(drop, float('-inf'))
        return torch.full_like(l, float('-inf')).scatter(-1, si, sl)

    @torch.no_grad()
    def step():
        cache = [None] * len(m.blocks)
        keep = torch.ones(R, P)
        mask = ((keep - 1) * 1e30).view(R, 1, 1, -1)
        last = m(ids0, mask, cache)[:, -1]
        total = 0
        for i in range(N):
            l = last[B:] + s * (last[:B] - last[B:])
            nxt = torch.multinomial(filt(l).softmax(-1), 1)[:, 0]
            total += int(nxt.sum())
            if i == N - 1:
                break
            keep = torch.cat([keep, torch.ones(R, 1)], 1)
            mask = ((keep - 1) * 1e30).view(R, 1, 1, -1)
            last = m(torch.cat([nxt, nxt])[:, None], mask, cache)[:, -1]
        return total

    return m, step


# ---------------------------------------------------------------------------------------------
# (d) LatentLM's sigma-VAE tokenizer (the lab arm's stage 1 at small)

def warmup_cosine(peak, warmup, total, step, lo=0.0):
    """core's warmupCosine: linear warm-up to peak, then cosine to lo at `total`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    q = 1.0 if total == warmup else min(1.0, (step - warmup) / (total - warmup))
    return lo + 0.5 * (peak - lo) * (1 + math.cos(math.pi * q))


def decay_groups(m, wd):
    """core's paramGroups: weight decay on matrices (rank >= 2), none on vectors; trainable only."""
    ps = [p for p in m.parameters() if p.requires_grad]
    return [{'params': [p for p in ps if p.dim() >= 2]}, {'params': [p for p in ps if p.dim() < 2], 'weight_decay': 0.0}]


class ViTBlock(nn.Module):
    """Pre-norm ViT block: x + attn(LN(x)), then + MLP(LN(x)) with exact GELU (core MLP 'gelu')."""

    def __init__(s, D, H):
        super().__init__()
        s.H, s.hs = H, D // H
        s.norm1, s.qkv, s.proj = nn.LayerNorm(D, eps=1e-5), nn.Linear(D, 3 * D), nn.Linear(D, D)
        s.norm2, s.fc1, s.fc2 = nn.LayerNorm(D, eps=1e-5), nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

    def forward(s, x):  # [B, N, D]
        b, n, d = x.shape
        q, k, v = [z.view(b, n, s.H, s.hs).transpose(1, 2) for z in s.qkv(s.norm1(x)).split(d, 2)]  # [B, H, N, hs]
        att = ((q @ k.transpose(-2, -1)) / math.sqrt(s.hs)).softmax(-1)  # bidirectional
        x = x + s.proj((att @ v).transpose(1, 2).reshape(b, n, d))
        return x + s.fc2(F.gelu(s.fc1(s.norm2(x))))


class ViTStack(nn.Module):
    def __init__(s, N, D, depth, H):
        super().__init__()
        s.pos_embed = nn.Parameter(torch.randn(N, D) * 0.02)
        s.blocks = nn.ModuleList([ViTBlock(D, H) for _ in range(depth)])
        s.norm = nn.LayerNorm(D, eps=1e-5)

    def forward(s, x):
        x = x + s.pos_embed
        for blk in s.blocks:
            x = blk(x)
        return s.norm(x)


class SigmaVAE(nn.Module):
    """ImageVAE of @mmlm/latentlm, posterior 'sigma': 32 px, patch 8 (N = 16), latent 16, width 128, depth 2, 4 heads."""

    def __init__(s, S=32, p=8, C=16, D=128, depth=2, H=4, c_sigma=0.1, kl_weight=1e-3):
        super().__init__()
        s.S, s.p, s.g, s.C, s.c_sigma, s.kl_weight = S, p, S // p, C, c_sigma, kl_weight
        N, P = (S // p) ** 2, p * p * 3
        s.enc_patch, s.enc_vit, s.enc_head = nn.Linear(P, D), ViTStack(N, D, depth, H), nn.Linear(D, C)
        s.dec_latent, s.dec_vit = nn.Linear(C, D), ViTStack(N, D, depth, H)
        s.dec_fc, s.dec_out = nn.Linear(D, D), nn.Linear(D, P)

    def patchify(s, x):  # [B, S, S, 3] -> [B, N, p*p*3], patches in raster order (ours: the same reshapes)
        b, g, p = x.shape[0], s.g, s.p
        return x.reshape(b * g, p, g, p * 3).transpose(1, 2).reshape(b, g * g, p * p * 3)

    def unpatchify(s, x):  # [B, N, p*p*3] -> [B, S, S, 3]
        b, g, p = x.shape[0], s.g, s.p
        return x.reshape(b * g, g, p, p * 3).transpose(1, 2).reshape(b, s.S, s.S, 3)

    def loss(s, x):
        mu = s.enc_head(s.enc_vit(s.enc_patch(s.patchify(x))))  # [B, N, C]
        sigma = torch.randn(mu.shape[0]) * (s.c_sigma / 0.8)  # one per image
        z = mu + sigma[:, None, None] * torch.randn_like(mu)
        xrec = s.unpatchify(s.dec_out(torch.tanh(s.dec_fc(s.dec_vit(s.dec_latent(z))))))
        rec = (xrec - x).pow(2).mean()
        return rec + s.kl_weight * mu.pow(2).mean()


def make_latent_vae():
    m = SigmaVAE()
    m.train()
    opt = torch.optim.AdamW(decay_groups(m, 0.01), lr=2e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01)
    x = torch.rand(B, 32, 32, 3)  # [B, S, S, 3] in [0, 1]
    t = [200]

    def step():
        loss = m.loss(x)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        for g in opt.param_groups:
            g['lr'] = warmup_cosine(2e-3, 50, 1500, t[0])
        opt.step()
        t[0] += 1
        return loss.item()

    return m, step


# ---------------------------------------------------------------------------------------------
# (e) LatentLM's backbone and diffusion head (the lab arm's stage 2 at small)

LAT_V, LAT_C, LAT_N, LAT_WORDS = 36, 16, 16, 8
PAD, BOS, BOD, EOD, LAT = 0, 1, 5, 6, 7


def rope_interleaved(T, hs, base=10000.0):
    """LatentLM's RoPE tables [T, hs]: theta_k = base^(-linspace(0, 1, hs/2)_k), pairs (2k, 2k + 1)."""
    inv = base ** -torch.linspace(0, 1, hs // 2)
    a = torch.arange(T, dtype=torch.float32)[:, None] * inv[None]  # [T, hs/2]
    return a.cos().repeat_interleave(2, -1), a.sin().repeat_interleave(2, -1)


def rotate_interleaved(x, cos, sin):  # x [B, H, T, hs]: (x0, x1) -> (x0 c - x1 s, x1 c + x0 s)
    pairs = x.unflatten(-1, (-1, 2))
    rot = torch.stack([-pairs[..., 1], pairs[..., 0]], -1).flatten(-2)
    return x * cos + rot * sin


class RMSNormNoGain(nn.Module):
    def __init__(s, eps=1e-6):
        super().__init__(); s.eps = eps

    def forward(s, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + s.eps)


class SwiGLU(nn.Module):
    def __init__(s, D, hid):
        super().__init__()
        s.fc1, s.gate, s.fc2 = nn.Linear(D, hid, bias=False), nn.Linear(D, hid, bias=False), nn.Linear(hid, D, bias=False)

    def forward(s, x):
        return s.fc2(F.silu(s.fc1(x)) * s.gate(x))


class LatentBlock(nn.Module):
    """core DecoderBlock as LatentLM configures it: RMSNorm (gain), qkv / proj without bias, interleaved RoPE, SwiGLU."""

    def __init__(s, D, H, drop):
        super().__init__()
        s.H, s.hs = H, D // H
        s.norm1, s.qkv, s.proj = RMSNorm(D), nn.Linear(D, 3 * D, bias=False), nn.Linear(D, D, bias=False)
        s.norm2, s.mlp = RMSNorm(D), SwiGLU(D, swiglu_hidden(D))
        s.drop = nn.Dropout(drop)

    def forward(s, x, cos, sin, causal):
        b, t, d = x.shape
        q, k, v = [z.view(b, t, s.H, s.hs).transpose(1, 2) for z in s.qkv(s.norm1(x)).split(d, 2)]
        q, k = rotate_interleaved(q, cos, sin), rotate_interleaved(k, cos, sin)
        att = ((q @ k.transpose(-2, -1)) / math.sqrt(s.hs)).masked_fill(causal, float('-inf')).softmax(-1)
        x = x + s.drop(s.proj((att @ v).transpose(1, 2).reshape(b, t, d)))
        return x + s.drop(s.mlp(s.norm2(x)))


class AdaLNBlock(nn.Module):
    """Head MLPBlock: x + gate * SwiGLU(RMSNorm(x) (1 + scale) + shift), (shift, scale, gate) = Linear(SiLU(c))."""

    def __init__(s, D):
        super().__init__()
        s.norm, s.mlp, s.ada = RMSNormNoGain(), SwiGLU(D, swiglu_hidden(D)), nn.Linear(D, 3 * D, bias=False)
        nn.init.zeros_(s.ada.weight)

    def forward(s, x, c):
        shift, scale, gate = s.ada(F.silu(c)).chunk(3, -1)
        return x + gate * s.mlp(s.norm(x) * (1 + scale) + shift)


class LatentLMTorch(nn.Module):
    def __init__(s, L=4, D=128, H=4, C=LAT_C, V=LAT_V, depth=3, freq=256, positions=LAT_N, drop=0.1):
        super().__init__()
        s.D, s.C, s.freq = D, C, freq
        s.tok = nn.Embedding(V, D)
        s.image_pos = nn.Embedding(positions, D)  # learned image positions (the small preset's recipe)
        s.blocks = nn.ModuleList([LatentBlock(D, H, drop) for _ in range(L)])
        s.norm, s.head = RMSNorm(D), nn.Linear(D, V, bias=False)
        s.x_embedder = nn.Linear(C, D, bias=False)
        s.cond_norm, s.cond_linear = RMSNormNoGain(), nn.Linear(D, D, bias=False)
        s.noisy_x_embedder = nn.Linear(C, D, bias=False)
        s.t_fc1, s.t_fc2 = nn.Linear(freq, D, bias=False), nn.Linear(D, D, bias=False)
        s.diffusion_blocks = nn.ModuleList([AdaLNBlock(D) for _ in range(depth)])
        s.final_norm, s.final_ada, s.final_linear = RMSNormNoGain(), nn.Linear(D, 2 * D, bias=False), nn.Linear(D, C, bias=False)
        nn.init.zeros_(s.final_ada.weight)
        nn.init.zeros_(s.final_linear.weight)

    def hidden(s, ids, lat, pos_idx, pos_on):  # ids [B, T], lat [B, T, C] -> [B, T, D]
        is_lat = (ids == LAT).float()[..., None]
        x = s.tok(ids) * (1 - is_lat) + s.x_embedder(lat) * is_lat
        x = x + s.image_pos(pos_idx) * pos_on
        T = ids.shape[1]
        cos, sin = rope_interleaved(T, s.D // s.blocks[0].H)
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)
        for blk in s.blocks:
            x = blk(x, cos, sin, causal)
        return s.norm(x)

    def diffusion(s, xt, t, cond):  # xt [M, C], t [M], cond [M, D] -> [M, C]
        half = s.freq // 2
        f = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        a = t.float()[:, None] * f[None]
        c = cond + s.t_fc2(F.silu(s.t_fc1(torch.cat([a.cos(), a.sin()], -1))))
        y = s.noisy_x_embedder(xt)
        for blk in s.diffusion_blocks:
            y = blk(y, c)
        shift, scale = s.final_ada(F.silu(c)).chunk(2, -1)
        return s.final_linear(s.final_norm(y) * (1 + scale) + shift)


def cosine_alphas_cumprod(T=1000):
    bar = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2
    betas = torch.tensor([min(1 - bar((i + 1) / T) / bar(i / T), 0.999) for i in range(T)], dtype=torch.float32)
    return torch.cumprod(1 - betas, 0)


def make_latent_lm(batch_mul=4, alpha=5.0):
    m = LatentLMTorch()
    m.train()
    opt = torch.optim.AdamW(decay_groups(m, 0.1), lr=3e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.1)
    abar = cosine_alphas_cumprod()
    # the batch of buildMixedBatch: 16 rows [<bos> 8 words <BOD> <LAT> x 16 <EOD>], inputs 0..25, targets 1..26
    T = 1 + LAT_WORDS + 1 + LAT_N  # 26 inputs
    caption = torch.randint(8, LAT_V, (B, LAT_WORDS))
    seq = torch.cat([torch.full((B, 1), BOS), caption, torch.full((B, 1), BOD), torch.full((B, LAT_N), LAT), torch.full((B, 1), EOD)], 1)
    ids = seq[:, :T]  # [B, T]
    span = 1 + LAT_WORDS  # input position of <BOD>
    z = torch.randn(B, LAT_N, LAT_C)  # standardised latents
    lat = torch.zeros(B, T, LAT_C)
    lat[:, span + 1:] = z  # the 16 <LAT> inputs carry latents 0..15 (the last one predicts <EOD>)
    ce_targets = torch.full((B, T), -100)
    ce_targets[:, T - 1] = EOD  # the last <LAT> predicts <EOD>; the rest of the loss is on latents
    diff_index = (torch.arange(B)[:, None] * T + torch.arange(span, span + LAT_N)[None]).reshape(-1)  # [B*16]
    x0 = z.reshape(-1, LAT_C)  # [B*16, C]
    pos_idx = torch.zeros(B, T, dtype=torch.long)  # index of the latent each position predicts
    pos_idx[:, span:span + LAT_N] = torch.arange(LAT_N)
    pos_on = torch.zeros(B, T, 1)
    pos_on[:, span:span + LAT_N] = 1
    Nd = x0.shape[0]
    t_ = [200]

    def step():
        h = m.hidden(ids, lat, pos_idx, pos_on)  # [B, T, D]
        lm = F.cross_entropy(m.head(h).reshape(B * T, LAT_V), ce_targets.reshape(-1), ignore_index=-100)
        cond = m.cond_linear(m.cond_norm(h)).reshape(B * T, -1)[diff_index]  # [N, D]
        rows = torch.arange(Nd).repeat_interleave(batch_mul)  # [N*4]
        tt = torch.randint(0, 1000, (Nd * batch_mul,))
        eps = torch.randn(Nd * batch_mul, LAT_C)
        a, sg = abar[tt].sqrt()[:, None], (1 - abar[tt]).sqrt()[:, None]
        x0m = x0[rows]
        xt = a * x0m + sg * eps
        v = a * eps - sg * x0m
        diff = (m.diffusion(xt, tt, cond[rows]) - v).pow(2).mean()
        loss = lm + alpha * diff
        _ = (lm.item(), diff.item())  # ours reads both parts each step
        opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        for g in opt.param_groups:
            g['lr'] = warmup_cosine(3e-3, 100, 6000, t_[0])
        opt.step()
        t_[0] += 1
        return loss.item() + 0 * norm.item()

    return m, step


# ---------------------------------------------------------------------------------------------
# (f) MaskLLM's learnable 2:4 mask on the small decoder

MASK_V, MASK_T = 35, 64


class MaskedLinear(nn.Module):
    """Frozen weight [out, in] and bias; trainable logits [out * in / 4, 6] over the 2:4 candidates S [6, 4]."""

    def __init__(s, cin, cout):
        super().__init__()
        s.weight = nn.Parameter(torch.randn(cout, cin) / math.sqrt(cin), requires_grad=False)
        s.bias = nn.Parameter(torch.zeros(cout), requires_grad=False)
        s.gate = nn.Parameter(torch.randn(cout * cin // 4, 6) * 0.01)
        S = [[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 0, 1], [0, 0, 1, 1]]
        s.register_buffer('S', torch.tensor(S, dtype=torch.float32))
        s.sampled = None

    def sample(s, kappa, tau):
        u = torch.rand(s.gate.shape) * (1 - 2e-7) + 1e-7
        g = -torch.log(-torch.log(u))
        y = ((s.gate * kappa + g) / tau).softmax(-1)  # [G, 6]
        s.sampled = (y @ s.S).reshape(s.weight.shape)  # [out, in]

    def forward(s, x):
        return F.linear(x, s.weight * s.sampled, s.bias)


class MaskBlock(nn.Module):
    def __init__(s, D, H):
        super().__init__()
        s.H, s.hs = H, D // H
        s.norm1, s.qkv, s.proj = nn.LayerNorm(D, eps=1e-5), MaskedLinear(D, 3 * D), MaskedLinear(D, D)
        s.norm2, s.fc1, s.fc2 = nn.LayerNorm(D, eps=1e-5), MaskedLinear(D, 4 * D), MaskedLinear(4 * D, D)

    def forward(s, x, causal):
        b, t, d = x.shape
        q, k, v = [z.view(b, t, s.H, s.hs).transpose(1, 2) for z in s.qkv(s.norm1(x)).split(d, 2)]
        att = ((q @ k.transpose(-2, -1)) / math.sqrt(s.hs)).masked_fill(causal, float('-inf')).softmax(-1)
        x = x + s.proj((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + s.fc2(F.gelu(s.fc1(s.norm2(x)), approximate='tanh'))


class MaskDecoder(nn.Module):
    def __init__(s, L=2, D=128, H=4):
        super().__init__()
        s.tok, s.pos = nn.Embedding(MASK_V, D), nn.Embedding(MASK_T, D)
        s.blocks = nn.ModuleList([MaskBlock(D, H) for _ in range(L)])
        s.norm, s.head = nn.LayerNorm(D, eps=1e-5), nn.Linear(D, MASK_V, bias=False)
        for p in s.parameters():  # everything but the mask logits is frozen (sparsify)
            p.requires_grad_(False)
        for ml in s.masked():
            ml.gate.requires_grad_(True)

    def masked(s):
        return [mod for mod in s.modules() if isinstance(mod, MaskedLinear)]

    def forward(s, ids):
        T = ids.shape[1]
        x = s.tok(ids) + s.pos.weight[:T]
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)
        for blk in s.blocks:
            x = blk(x, causal)
        return s.head(s.norm(x))


def make_mask_step(steps=300, lr=5e-3, lr_min=5e-4, weight_reg=2e-3):
    m = MaskDecoder()
    m.train()
    gates = [ml.gate for ml in m.masked()]
    opt = torch.optim.AdamW(gates, lr=lr, betas=(0.9, 0.95), eps=1e-5, weight_decay=0.1)
    ids = torch.randint(0, MASK_V, (B, MASK_T + 1))
    t_ = [steps // 2]

    def step():
        r = min(max(t_[0] / steps, 0.0), 1.0)
        tau, kappa, lam = 4 + (0.05 - 4) * r, 100 + (500 - 100) * r, weight_reg * (1 - r)
        for ml in m.masked():
            ml.sample(kappa, tau)
        lm = F.cross_entropy(m(ids[:, :-1]).reshape(-1, MASK_V), ids[:, 1:].reshape(-1))
        reg = sum((ml.weight * ml.sampled).pow(2).sum() for ml in m.masked())
        _ = (lm.item(), reg.item())  # ours reads both parts each step
        loss = lm - lam * reg
        opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(gates, 1.0)
        for g in opt.param_groups:
            g['lr'] = warmup_cosine(lr, 0, steps, t_[0], lr_min)
        opt.step()
        t_[0] += 1
        return loss.item() + 0 * norm.item()

    return m, step


# ---------------------------------------------------------------------------------------------
# gpt-bench (shared/peer/GPT_BENCH.md), the model of shared/peer/gpt_step_torch.py: pre-norm GPT,
# V 256, D 256, 4 layers, 4 heads, T 128, GELU (exact, as F.gelu) MLP 4x, learned positions, untied
# head without bias, cross-entropy, AdamW lr 3e-4 (torch defaults otherwise); here so that it runs
# on a GPU too (that script is CPU-only).

class GptBlock(nn.Module):
    def __init__(s, D=256, H=4):
        super().__init__(); s.D, s.H = D, H
        s.ln1 = nn.LayerNorm(D); s.qkv = nn.Linear(D, 3 * D); s.proj = nn.Linear(D, D)
        s.ln2 = nn.LayerNorm(D); s.fc = nn.Linear(D, 4 * D); s.out = nn.Linear(4 * D, D)

    def forward(s, x):
        b, t, D = x.shape
        q, k, v = s.qkv(s.ln1(x)).split(D, dim=2)
        q, k, v = [z.view(b, t, s.H, D // s.H).transpose(1, 2) for z in (q, k, v)]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D // s.H)
        att = att.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float('-inf')).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, D)
        x = x + s.proj(y)
        return x + s.out(F.gelu(s.fc(s.ln2(x))))


class Gpt(nn.Module):
    def __init__(s, V=256, D=256, L=4, T=128):
        super().__init__(); s.tok = nn.Embedding(V, D); s.pos = nn.Embedding(T, D)
        s.blocks = nn.ModuleList([GptBlock(D) for _ in range(L)]); s.lnf = nn.LayerNorm(D); s.head = nn.Linear(D, V, bias=False)

    def forward(s, idx):
        x = s.tok(idx) + s.pos(torch.arange(idx.shape[1]))
        for b in s.blocks:
            x = b(x)
        return s.head(s.lnf(x))


def make_gpt_bench(V=256, T=128):
    m = Gpt()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-4)
    x, y = torch.randint(0, V, (16, T)), torch.randint(0, V, (16, T))

    def step():
        loss = F.cross_entropy(m(x).view(-1, V), y.view(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return m, step


WORKLOADS = {
    'gpt-bench': make_gpt_bench,
    'liquid-vq-tokenizer': make_tokenizer,
    'liquid-vq-tokenizer-32px': lambda: make_tokenizer(32, 32),
    'lm-2x64-T20': lambda: make_lm(2, 64, 20),
    'lm-2x64-T60': lambda: make_lm(2, 64, 60),
    'lm-4x128-T20': lambda: make_lm(4, 128, 20),
    'lm-4x128-T60': lambda: make_lm(4, 128, 60),
    'lm-4x128-T80-b32': lambda: make_lm(4, 128, 80, 32),
    'gen-2x64-cfg': make_generation,
    'latentlm-vae-32px': make_latent_vae,
    'latentlm-lm-4x128': make_latent_lm,
    'maskllm-mask-step': make_mask_step,
}

def warm_up(step, seconds):
    t0 = time.perf_counter()
    n = 0
    while n < 2 or (n < 500 and time.perf_counter() - t0 < seconds):
        step()
        n += 1
    return n, (time.perf_counter() - t0) * 1000


def timed(step, k):
    times = []
    for _ in range(k):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1000)
    return times


if args.serve:
    built = {}
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == 'quit':
            break
        name = cmd[1]
        if name not in WORKLOADS:
            print(json.dumps({'error': f'unknown workload {name}'}), flush=True)
            continue
        if name not in built:
            built[name] = WORKLOADS[name]()
        m, step = built[name]
        params = sum(p.numel() for p in m.parameters())
        if cmd[0] == 'warm':
            n, ms = warm_up(step, float(cmd[2]))
            print(json.dumps({'name': name, 'params': params, 'warmupSteps': n, 'warmupMs': round(ms, 3)}), flush=True)
        else:
            print(json.dumps({'name': name, 'params': params, 'msAll': [round(x, 3) for x in timed(step, int(cmd[2]))]}), flush=True)
    sys.exit(0)

only = [w for w in args.only.split(',') if w] or [w for w in WORKLOADS if w != 'gpt-bench']
for name in only:
    m, step = WORKLOADS[name]()
    params = sum(p.numel() for p in m.parameters())  # frozen parameters included, as ours
    t0 = time.perf_counter()
    warm_steps = 0
    # warm-up (each step ends in .item(), which waits for the device)
    if args.warmup_s is None:
        for _ in range(args.warmup):
            step()
            warm_steps += 1
    else:
        warm_steps, _ = warm_up(step, args.warmup_s)
    warm = (time.perf_counter() - t0) * 1000
    times = timed(step, args.steps)
    print(json.dumps({'name': name, 'params': params, 'msAll': [round(x, 3) for x in times], 'warmupMs': round(warm, 3), 'warmupSteps': warm_steps}), flush=True)
