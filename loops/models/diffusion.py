"""Diffusion backend: a class-conditional diffusers `UNet2DModel`, trained with `DDPMScheduler`
(epsilon prediction, per-sample weights in the loss) and sampled with `DDIMScheduler`.

Classifier-free guidance: labels are replaced by a null class with probability `label_dropout`
(0.2: a fifth of the batches train the unconditional branch, which guidance leans on) in training;
sampling mixes eps = (1 + w) eps(x, c) - w eps(x, null). MAD's sampling bias is
lambda = 1 / (1 + w) (`bias` in the protocol), so w = 0 is plain conditional sampling.

Quality: the network that samples is an exponential moving average of the trained weights
(`ema_decay`, warmed up as min(decay, (1 + step) / (10 + step)), as the DDPM/DDIM code does), and
DDIM clips each step's predicted x0 to [-1, 1] (`clip_sample`, as the DDIM code of the seed papers
does) and steps with the noise that the clipped x0 implies (`use_clipped_model_output`), so
guidance cannot push the image out of range and a clean background lands on exactly 0.

Each generation trains a fresh network (seeded from the run's generator), as MAD retrains from
scratch. Images are grey uint8 (R, N, H, W) at the preset's resolution; the network sees [-1, 1].
On CPU, torch uses `cpu_threads` threads (1 by default; loops/threads.py says why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from loops.models.base import fit_weights
from loops.threads import torch_threads


@dataclass(frozen=True)
class DiffusionPreset:
    resolution: int
    channels: tuple[int, ...]
    attention: bool
    train_steps: int
    batch_size: int
    learning_rate: float
    sample_steps: int
    label_dropout: float = 0.2
    timesteps: int = 1000
    ema_decay: float = 0.995
    train_epochs: float | None = None  # when set: steps = epochs x training items / batch size

    def steps_for(self, items: int) -> int:
        """Training steps for a pool of `items`: fixed, or scaled so every pool size sees the same epochs."""
        if self.train_epochs is None:
            return self.train_steps
        return max(1, math.ceil(self.train_epochs * items / self.batch_size))


PRESETS = {
    # 2-core CPU: ~0.27M parameters, ~0.1 s per batch-128 step, 512 samples x 25 DDIM steps in ~4 s
    "cpu": DiffusionPreset(
        resolution=16,
        channels=(16, 32, 32),
        attention=False,
        train_steps=1500,
        batch_size=128,
        learning_rate=2e-3,
        sample_steps=25,
    ),
    # one GPU: 32x32 with self-attention in the two lower levels
    "gpu": DiffusionPreset(
        resolution=32,
        channels=(64, 128, 128),
        attention=True,
        train_steps=6000,
        batch_size=256,
        learning_rate=1e-3,
        sample_steps=50,
    ),
}


def default_preset_name(device: str | None = None) -> str:
    return "gpu" if (device or default_device()).startswith("cuda") else "cpu"


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class DiffusionModel:
    name = "diffusion"
    min_items = 10
    conditional = True

    def __init__(
        self,
        rngs: list[np.random.Generator],
        preset: DiffusionPreset,
        classes: int,
        guidance: float = 0.0,
        device: str | None = None,
        cpu_threads: int = 1,
        fit_cache=None,
    ):
        self.rngs, self.preset, self.classes, self.guidance = rngs, preset, classes, guidance
        self.cpu_threads = cpu_threads
        # a FitCache for the first fit (a loop's generation 0, on real images only): the same fit in every
        # configuration of a seed, so it trains once; later fits differ between configurations
        self.fit_cache = fit_cache
        self.device = device or default_device()
        self.nets: list | None = None

    def fit(self, x, y=None, weights=None) -> None:
        if y is None:
            raise ValueError("the diffusion backend is class-conditional; it needs labels y")
        w, ok = fit_weights(self, x, None, weights, fitted=self.nets is not None)
        cache = self.fit_cache if self.nets is None else None
        nets = self.nets or [None] * len(self.rngs)
        with torch_threads(self.cpu_threads):
            for r, rng in enumerate(self.rngs):
                if ok[r]:
                    nets[r] = self._train(rng, x[r], np.asarray(y[r]), w[r], cache)
        self.nets = nets

    def sample(self, n: int, y=None, bias: float = 1.0) -> np.ndarray:
        """uint8 (R, n, H, W); y (R, n) class labels (None: uniform over the classes)."""
        import torch

        guidance = 1.0 / bias - 1.0
        out = []
        for r, (rng, net) in enumerate(zip(self.rngs, self.nets)):
            labels = rng.integers(self.classes, size=n) if y is None else np.asarray(y[r])
            generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
            with torch_threads(self.cpu_threads):
                out.append(self._sample_one(net, labels, guidance, generator))
        return np.stack(out)

    def state(self) -> dict[str, np.ndarray]:
        return {f"run{r}.{k}": v for r, net in enumerate(self.nets) for k, v in _parameters(net).items()}

    def load_state(self, state) -> None:
        self.nets = [
            self._loaded({k[len(f"run{r}.") :]: v for k, v in state.items() if k.startswith(f"run{r}.")})
            for r in range(len(self.rngs))
        ]

    def _loaded(self, parameters: dict[str, np.ndarray]):
        import torch

        net = self._network()
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in parameters.items()})
        return net.to(self.device).eval()

    def _network(self):
        from diffusers import UNet2DModel

        p = self.preset
        levels = len(p.channels)
        down = ["DownBlock2D"] * levels
        up = ["UpBlock2D"] * levels
        if p.attention:  # attention at the two coarsest levels
            down[-2:] = ["AttnDownBlock2D"] * 2
            up[:2] = ["AttnUpBlock2D"] * 2
        return UNet2DModel(
            sample_size=p.resolution,
            in_channels=1,
            out_channels=1,
            block_out_channels=p.channels,
            layers_per_block=1,
            down_block_types=tuple(down),
            up_block_types=tuple(up),
            num_class_embeds=self.classes + 1,
            norm_num_groups=min(8, p.channels[0]),
        )

    def _train(self, rng: np.random.Generator, x: np.ndarray, y: np.ndarray, w: np.ndarray, cache=None):
        """A fresh network trained on the items with positive weight (loaded from `cache` when it holds
        this fit); the loss weights each item by w."""
        seed = int(rng.integers(2**63))
        used = w > 0
        x, y, w = x[used], y[used].astype(np.int64), w[used]
        if cache is None:
            return self._train_network(seed, x, y, w)
        key = cache.key(
            seed, x, y, w, self.preset, self.classes, str(self.device), *_fit_code_versions(self._network())
        )
        return self._loaded(cache.fit(key, lambda: _parameters(self._train_network(seed, x, y, w))))

    def _train_network(self, seed: int, x: np.ndarray, y: np.ndarray, w: np.ndarray):
        import torch
        from diffusers import DDPMScheduler

        p = self.preset
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        images = _to_model_space(x, p.resolution).to(self.device)
        labels = torch.from_numpy(y).to(self.device)
        item_weights = torch.from_numpy(w / w.mean()).float().to(self.device)
        steps = p.steps_for(len(images))
        net = self._network().to(self.device).train()
        ema = self._network().to(self.device).eval().requires_grad_(False)
        ema.load_state_dict(net.state_dict())
        trained, averaged = list(net.parameters()), list(ema.parameters())
        scheduler = DDPMScheduler(num_train_timesteps=p.timesteps)
        optimiser = torch.optim.AdamW(net.parameters(), lr=p.learning_rate)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=p.learning_rate, total_steps=steps)
        for step in range(steps):
            batch = torch.randint(len(images), (p.batch_size,), generator=generator).to(self.device)
            dropped = (torch.rand(p.batch_size, generator=generator) < p.label_dropout).to(self.device)
            noise = torch.randn(images[batch].shape, generator=generator).to(self.device)
            t = torch.randint(p.timesteps, (p.batch_size,), generator=generator).to(self.device)
            conditioning = torch.where(dropped, self.classes, labels[batch])
            predicted = net(scheduler.add_noise(images[batch], noise, t), t, class_labels=conditioning).sample
            per_item = ((predicted - noise) ** 2).mean(dim=(1, 2, 3))
            loss = (item_weights[batch] * per_item).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            with torch.no_grad():
                decay = min(p.ema_decay, (1 + step) / (10 + step))
                torch._foreach_lerp_(averaged, trained, 1.0 - decay)
        return ema

    def _sample_one(self, net, labels: np.ndarray, guidance: float, generator, batch_size: int = 1024) -> np.ndarray:
        import torch
        from diffusers import DDIMScheduler

        p = self.preset
        scheduler = DDIMScheduler(num_train_timesteps=p.timesteps, clip_sample=True, clip_sample_range=1.0)
        scheduler.set_timesteps(p.sample_steps)
        parts = []
        for start in range(0, len(labels), batch_size):
            c = torch.from_numpy(labels[start : start + batch_size].astype(np.int64)).to(self.device)
            x = torch.randn((len(c), 1, p.resolution, p.resolution), generator=generator).to(self.device)
            null = torch.full_like(c, self.classes)
            with torch.no_grad():
                for t in scheduler.timesteps:
                    if guidance == 0:
                        eps = net(x, t, class_labels=c).sample
                    else:
                        both = net(torch.cat([x, x]), t, class_labels=torch.cat([c, null])).sample
                        conditional, unconditional = both.chunk(2)
                        eps = (1 + guidance) * conditional - guidance * unconditional
                    # step with the noise implied by the clipped x0: with guidance, the extrapolated eps
                    # and the clipped x0 disagree, and stepping with the raw eps loses the class
                    # (label agreement 0.44 at w = 2 against 1.0; examples/mnist_loops.md)
                    x = scheduler.step(eps, t, x, use_clipped_model_output=True).prev_sample
            parts.append(_to_uint8(x))
        return np.concatenate(parts)


def _fit_code_versions(net) -> tuple[str, ...]:
    """What else decides a fit: the network's layers and the torch and diffusers versions."""
    import diffusers
    import torch

    return repr(net), torch.__version__, diffusers.__version__


def _parameters(net) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}


def _to_model_space(x: np.ndarray, resolution: int):
    import torch

    if x.shape[1:] != (resolution, resolution):
        raise ValueError(f"the diffusion backend takes {resolution}x{resolution} images, got {x.shape[1:]}")
    return torch.from_numpy(x.astype(np.float32) / 127.5 - 1.0)[:, None]


def _to_uint8(x) -> np.ndarray:
    return ((x[:, 0].clamp(-1, 1) + 1) * 127.5).round().to("cpu").numpy().astype(np.uint8)
