"""The Transformer encoder that reads kinematics and load and writes every muscle's EMG."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["EMGTransformer", "SinusoidalPositionalEncoding"]


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the sine/cosine position code of Vaswani et al. (2017) to ``(B, T, d_model)`` input.

    Examples
    --------
    >>> import torch
    >>> SinusoidalPositionalEncoding(8)(torch.zeros(2, 5, 8)).shape
    torch.Size([2, 5, 8])
    """

    def __init__(self, d_model: int, max_len: int = 10_000) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        frequency = torch.exp(
            torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10_000.0) / d_model)
        )
        code = torch.zeros(max_len, d_model)
        code[:, 0::2] = torch.sin(position * frequency)
        code[:, 1::2] = torch.cos(position * frequency)[:, : d_model // 2]
        self.register_buffer("code", code, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, T, d_model)`` plus the code of positions ``0 .. T - 1``."""
        if x.shape[1] > self.code.shape[0]:
            raise ValueError(f"sequence of {x.shape[1]} steps is longer than {self.code.shape[0]}.")
        return x + self.code[: x.shape[1]].to(x.dtype)


class EMGTransformer(nn.Module):
    """Kinematics and load in, EMG envelopes in [0, 1] for every muscle out.

    ``(B, T, n_inputs)`` -> linear embedding -> positional code -> Transformer encoder
    (self-attention over the window) -> linear head -> sigmoid -> ``(B, T, n_muscles)``.
    With ``code_dim > 0`` a subject's code ``c`` ``(B, code_dim)`` modulates every embedded
    step ``e`` (FiLM, Perez et al. 2018): ``e * (1 + S c) + T c`` (plus a fixed offset, 0
    until the codes are centred), with ``S`` and ``T`` linear maps without bias, so the EMG
    depends on the subject; code 0 (or none) leaves the network as without codes.

    Parameters
    ----------
    n_inputs, n_muscles : int
        Input channels and output muscles.
    d_model, n_heads, n_layers : int
        Width, attention heads and encoder layers.
    dropout : float
        Dropout in the encoder layers: on each sublayer's output and inside the feed-forward
        block.
    code_dim : int, default=0
        Length of the subject code the network is conditioned on (0: none).
    attention_dropout : float, default=0.0
        Dropout on the attention weights. Off by default: with it, PyTorch's CPU attention
        leaves its fused kernel and draws a mask for each of the ``B x heads x T x T``
        weights, 2.5x the attention's training time, for no measurable accuracy
        (docs/results/fit_profile.txt).

    Examples
    --------
    >>> import torch
    >>> net = EMGTransformer(4, 7, d_model=16, n_heads=2, n_layers=1)
    >>> out = net(torch.randn(3, 50, 4))
    >>> out.shape, bool(out.min() >= 0 and out.max() <= 1)
    (torch.Size([3, 50, 7]), True)
    >>> net = EMGTransformer(4, 7, d_model=16, n_heads=2, n_layers=1, code_dim=2).eval()
    >>> x = torch.randn(3, 50, 4)
    >>> bool(torch.equal(net(x), net(x, torch.zeros(3, 2))))  # code 0: the population
    True
    """

    def __init__(
        self,
        n_inputs: int,
        n_muscles: int,
        d_model: int = 32,
        n_heads: int = 4,
        n_layers: int = 2,
        dropout: float = 0.1,
        code_dim: int = 0,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of n_heads ({n_heads}).")
        self.embed = nn.Linear(n_inputs, d_model)
        self.position = SinusoidalPositionalEncoding(d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=2 * d_model, dropout=dropout, batch_first=True
        )
        layer.self_attn.dropout = float(attention_dropout)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, n_muscles)
        self.code_dim = int(code_dim)
        if self.code_dim:  # made last, so the layers above draw the same initial weights
            self.condition = nn.Linear(self.code_dim, 2 * d_model, bias=False)
            # added after the modulation, whatever the code: NeuralMusculoskeletalModule's
            # center_codes moves the shift of the codes' mean here
            self.register_buffer("code_offset", torch.zeros(d_model))

    def forward(self, x: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        """EMG ``(B, T, n_muscles)`` of ``x`` ``(B, T, n_inputs)``.

        For the subjects whose codes ``code`` ``(B, code_dim)`` gives (None: the population,
        code 0).
        """
        return torch.sigmoid(self.logits(x, code))

    def logits(self, x: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        """The EMG's logits (before the sigmoid), as :meth:`forward` takes its arguments."""
        tokens = self.embed(x)
        if self.code_dim:
            if code is not None:
                shift, scale = self.condition(code.to(tokens.dtype)).unsqueeze(1).chunk(2, dim=-1)
                tokens = tokens * (1 + scale) + shift
            tokens = tokens + self.code_offset
        return self.head(self.encoder(self.position(tokens)))
