import sys

import torch

from include.recsys.ml.adam import Adam


def _quadratic_steps(make, steps: int = 25) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    param = torch.nn.Parameter(torch.randn(40, 8, generator=generator))
    target = torch.randn(40, 8, generator=generator)
    optimizer = make(param)
    for _ in range(steps):
        loss = ((param - target) ** 2 * torch.linspace(0.1, 3.0, 8)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return param.detach()


def test_adam_takes_torch_optims_steps_exactly():
    ours = _quadratic_steps(lambda p: Adam(p, lr=0.05))
    theirs = _quadratic_steps(lambda p: torch.optim.Adam([p], lr=0.05))
    assert torch.equal(ours, theirs)
    # and it moved: the parameters are not where they started
    assert not torch.equal(ours, _quadratic_steps(lambda p: Adam(p, lr=0.05), steps=0))


def test_adam_needs_no_dynamo(monkeypatch):
    # the point of the module: building and stepping it never imports torch._dynamo (1.2 s here)
    for name in [m for m in sys.modules if m.startswith("torch._dynamo")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch._dynamo", None)  # an import of it now raises ImportError
    _quadratic_steps(lambda p: Adam(p, lr=0.05), steps=3)
