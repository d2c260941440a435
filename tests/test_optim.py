"""polysent.optim against torch.optim: the same weights after every step, the same LR schedule,
and no torch._dynamo import in a process that trains with it."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from polysent.optim import Adam, Plateau


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Linear(5, 8)
        self.lstm = torch.nn.LSTM(8, 6, batch_first=True)
        self.head = torch.nn.Linear(6, 1)
        self.unused_sometimes = torch.nn.Linear(6, 1)

    def forward(self, x, step):
        h, _ = self.lstm(torch.tanh(self.embed(x)))
        out = self.head(h[:, -1])
        if step % 3 == 0:  # some steps leave this layer without a gradient
            out = out + self.unused_sometimes(h[:, 0])
        return out


@pytest.mark.parametrize(
    "decoupled, weight_decay, reference",
    [
        (False, 0.0, lambda p, lr, wd: torch.optim.Adam(p, lr=lr, weight_decay=wd, foreach=True)),
        (False, 1e-4, lambda p, lr, wd: torch.optim.Adam(p, lr=lr, weight_decay=wd, foreach=True)),
        (True, 1e-2, lambda p, lr, wd: torch.optim.AdamW(p, lr=lr, weight_decay=wd, foreach=True)),
    ],
)
def test_adam_matches_torch_optim_bit_for_bit(decoupled, weight_decay, reference):
    torch.manual_seed(0)
    ours_net, ref_net = _Net(), _Net()
    ref_net.load_state_dict(ours_net.state_dict())
    lr = 3e-3
    ours = Adam(ours_net.parameters(), lr=lr, weight_decay=weight_decay, decoupled=decoupled)
    ref = reference(list(ref_net.parameters()), lr, weight_decay)
    gen = torch.Generator().manual_seed(1)
    for step in range(12):
        x = torch.randn(4, 7, 5, generator=gen)
        y = torch.randn(4, 1, generator=gen)
        if step == 6:  # the schedule lowers the LR mid-run
            ours.param_groups[0]["lr"] = ref.param_groups[0]["lr"] = lr * 0.1
        for net, opt in ((ours_net, ours), (ref_net, ref)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x, step), y).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
            opt.step()
        for (name, a), b in zip(ours_net.named_parameters(), ref_net.parameters()):
            assert torch.equal(a, b), f"step {step}: {name} differs from torch.optim"
    # the rarely used layer got state only from the steps it was used in, as in torch
    p_ours, p_ref = ours_net.unused_sometimes.weight, ref_net.unused_sometimes.weight
    assert float(ours.state[p_ours]["step"]) == float(ref.state[p_ref]["step"]) == 4.0


def test_adam_refuses_what_it_does_not_implement():
    with pytest.raises(ValueError, match="no parameters"):
        Adam([], lr=1e-3)
    with pytest.raises(ValueError, match="invalid"):
        Adam([torch.zeros(1, requires_grad=True)], lr=-1.0)


def test_plateau_lowers_the_lr_at_the_epochs_torch_does():
    rng = np.random.default_rng(3)
    for patience in (0, 1, 3):
        losses = list(1.0 / np.arange(1, 9)) + list(rng.uniform(0.1, 0.2, 30)) + [math.nan, 0.05, 0.05]
        ours_opt = Adam([torch.zeros(1, requires_grad=True)], lr=0.2)
        ref_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
        ours = Plateau(ours_opt, patience=patience, factor=0.1)
        ref = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, mode="min", patience=patience, factor=0.1)
        for epoch, loss in enumerate(losses):
            ours.step(loss)
            ref.step(loss)
            assert ours_opt.param_groups[0]["lr"] == ref_opt.param_groups[0]["lr"], (patience, epoch)
        assert ours_opt.param_groups[0]["lr"] < 1e-3  # the sequence did trigger reductions


def test_training_with_it_does_not_import_torch_dynamo():
    code = (
        "import sys, torch\n"
        "from polysent.optim import Adam, Plateau\n"
        "net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))\n"
        "opt = Adam(net.parameters(), lr=1e-2, weight_decay=1e-4)\n"
        "plateau = Plateau(opt, patience=0)\n"
        "for _ in range(3):\n"
        "    opt.zero_grad()\n"
        "    net(torch.ones(2, 3)).sum().backward()\n"
        "    torch.nn.utils.clip_grad_norm_(list(net.parameters()), 1.0)\n"
        "    opt.step()\n"
        "    plateau.step(1.0)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
