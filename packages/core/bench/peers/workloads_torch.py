# PyTorch peer of bench/workloads.ts: the same experiment-shaped steps (shapes, parameter counts,
# optimizer) on the CPU, so that `pnpm bench` can put both in one table.
#
# usage: python3 workloads_torch.py [--threads N] [--steps S] [--only name,name]
# Prints one JSON line describing torch (version, threads, the BLAS it links), then one JSON line per
# workload: {"name", "params", "msAll", "warmupMs"}. Tensors are NCHW here (PyTorch's layout) and NHWC
# in the TypeScript version; every other choice follows workloads.ts and @mmlm/liquid:
#   liquid-vq-tokenizer  taming-style encoder / decoder (no attention), GroupNorm(4, 16, eps 1e-6),
#                        swish, pad (0, 1, 0, 1) + stride-2 conv, nearest x2 + conv; VQ K 64 x 8 with
#                        an EMA codebook (decay 0.99, eps 1e-5), dead-code restart after 20 unused
#                        steps, loss mse + 0.25 commitment, grad clip 1, AdamW 2e-3 (0.9, 0.95) wd 0.
#                        (Ours runs a k-means codebook init on its first, warm-up, step; not here.)
#   liquid-vq-tokenizer-32px  the same at the lab's small preset: 32 px, ch 32 (8 groups per GroupNorm).
#   lm-LxD-TT            RoPE (half rotation), RMSNorm eps 1e-6, SwiGLU, no biases, untied head,
#                        4 heads, dropout 0.1, vocab 128; cross-entropy, clip 1, AdamW 3e-3
#                        (0.9, 0.95) eps 1e-8, weight decay 0.1 on matrices only.
#   gen-2x64-cfg         eval, no_grad, KV cache, 2B = 32 CFG rows, padding mask, 16 new tokens,
#                        CFG 1.5, temperature 0.5, top-p 0.96, ids 64..127 only.
import argparse, json, math, os, time
import torch, torch.nn as nn, torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument('--threads', type=int, default=1)
ap.add_argument('--steps', type=int, default=5)
ap.add_argument('--only', type=str, default='')
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)
B = 16


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
    for part in torch.__config__.show().replace('\n', ' ').split(','):
        part = part.strip()
        if key in part:
            return part.split('=', 1)[-1].strip()
    return None


libs = blas_libs()
blas_lib = next((l for l in libs if 'blas' in os.path.basename(l).lower() or 'blas' in l.lower()), None)
blas_name = 'OpenBLAS' if blas_lib and 'openblas' in blas_lib.lower() else ('MKL' if any('mkl' in l for l in libs) else (blas_lib or 'unknown'))
print(json.dumps({
    'peer': 'torch', 'torch': torch.__version__, 'threads': torch.get_num_threads(),
    'blasInfo': config_field('BLAS_INFO'), 'blas': blas_name, 'blasLib': blas_lib, 'libs': libs,
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


def make_lm(L, D, T):
    m = LM(L, D)
    m.train()
    decay = [p for p in m.parameters() if p.dim() >= 2]
    no_decay = [p for p in m.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay}, {'params': no_decay, 'weight_decay': 0.0}], lr=3e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    x, y = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))

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


WORKLOADS = {
    'liquid-vq-tokenizer': make_tokenizer,
    'liquid-vq-tokenizer-32px': lambda: make_tokenizer(32, 32),
    'lm-2x64-T20': lambda: make_lm(2, 64, 20),
    'lm-2x64-T60': lambda: make_lm(2, 64, 60),
    'lm-4x128-T20': lambda: make_lm(4, 128, 20),
    'lm-4x128-T60': lambda: make_lm(4, 128, 60),
    'gen-2x64-cfg': make_generation,
}

only = [w for w in args.only.split(',') if w] or list(WORKLOADS)
for name in only:
    m, step = WORKLOADS[name]()
    params = sum(p.numel() for p in m.parameters() if p.requires_grad)
    t0 = time.perf_counter()
    step()  # warm-up
    warm = (time.perf_counter() - t0) * 1000
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1000)
    print(json.dumps({'name': name, 'params': params, 'msAll': [round(x, 3) for x in times], 'warmupMs': round(warm, 3)}), flush=True)
