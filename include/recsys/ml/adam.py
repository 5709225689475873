"""Adam on one dense parameter, the update torch.optim.Adam computes on the CPU, op for op.

torch.optim's optimizers import torch._dynamo when they are built (their methods are wrapped to keep graph
compilation out), and that import is 1.2 s on these machines: a fifth of a default-scale fit, paid by every
training task. LightGCN trains one embedding table with plain Adam (no weight decay, no amsgrad), which is
these few lines.
"""

from __future__ import annotations

import torch


class Adam:
    def __init__(self, param: torch.Tensor, *, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.steps = 0
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)

    def zero_grad(self) -> None:
        self.param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        # torch.optim.adam._single_tensor_adam's order of operations, so a fit is the same as with torch's Adam.
        beta1, beta2 = self.betas
        grad = self.param.grad
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1**self.steps
        bias_correction2_sqrt = (1 - beta2**self.steps) ** 0.5
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-self.lr / bias_correction1)
