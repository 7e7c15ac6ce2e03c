"""Planning probe (not a benchmark of record): training-step throughput of the hidden-20 U-Net on CUDA."""
import time

import torch

from solvers.metamizer.model import UNet

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
for bench in (False, True):
    torch.backends.cudnn.benchmark = bench
    net = UNet(hidden=20, norm="batch").cuda()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.randn(10, 3, 100, 100, device="cuda")
    for i in range(230):
        if i == 30:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        field, scalar = net(x)
        loss = field.square().mean() + scalar.square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    print(f"cudnn.benchmark={bench}: {(time.perf_counter() - t0) / 200 * 1e3:.2f} ms per step (batch 10, 100x100)")
