"""Decoding settings: their one validation, and the options the command-line tools choose.

`check_beam_settings` is the rule for beam size, length penalty and n-best, whoever gives them:
the training configuration (`decode.*`), the command-line options (`--beam-size` ...) and the
searches themselves (`seq2seq.inference.beam`); each passes the names its user knows. Standard
library only: the command-line tools check their options before TensorFlow starts.
"""

import dataclasses

_SETTINGS = (
    "beam_size",
    "alpha",
    "n_best",
    "min_length",
    "no_repeat_ngram_size",
    "temperature",
    "top_k",
    "top_p",
)
CONFIG_NAMES = {name: f"decode.{name}" for name in _SETTINGS}
OPTION_NAMES = {name: "--" + name.replace("_", "-") for name in _SETTINGS}
ARGUMENT_NAMES = {name: name for name in _SETTINGS}


def check_beam_settings(beam_size=None, alpha=None, n_best=None, *, names=ARGUMENT_NAMES):
    """Raises ValueError, naming the setting by `names`, for a value out of range; None is a
    setting not known here (a tensor, checked when the graph runs).

    beam_size >= 1; alpha >= 0 (the `bound` stopping rule relies on it); 1 <= n_best <= beam_size.
    """
    if beam_size is not None and beam_size < 1:
        raise ValueError(f"{names['beam_size']}={beam_size}: must be at least 1")
    if n_best is not None and n_best < 1:
        raise ValueError(f"{names['n_best']}={n_best}: must be at least 1")
    if beam_size is not None and n_best is not None and n_best > beam_size:
        raise ValueError(
            f"{names['n_best']}={n_best}: must be at most {names['beam_size']}={beam_size}"
        )
    if alpha is not None and not alpha >= 0:
        raise ValueError(f"{names['alpha']}={alpha}: must be at least 0")


def check_constraints(min_length=None, no_repeat_ngram_size=None, *, names=ARGUMENT_NAMES):
    """Raises ValueError, naming the setting, unless min_length >= 0 and
    no_repeat_ngram_size >= 0 (0: off); None is not known here."""
    for name, value in (("min_length", min_length), ("no_repeat_ngram_size", no_repeat_ngram_size)):
        if value is not None and value < 0:
            raise ValueError(f"{names[name]}={value}: must be at least 0 (0: off)")


def check_sampling(temperature, top_k, top_p, *, names=ARGUMENT_NAMES):
    """Raises ValueError, naming the setting, unless temperature >= 0 (0: greedy), top_k >= 0
    (0: off) and 0 < top_p <= 1 (1: off)."""
    if not temperature >= 0:
        raise ValueError(f"{names['temperature']}={temperature}: must be at least 0 (0: greedy)")
    if top_k < 0:
        raise ValueError(f"{names['top_k']}={top_k}: must be at least 0 (0: off)")
    if not 0 < top_p <= 1:
        raise ValueError(f"{names['top_p']}={top_p}: must be in (0, 1] (1: off)")


@dataclasses.dataclass(frozen=True)
class SampleOptions:
    """Sampling chosen at run time (the `translate_sample` signature)."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0

    def check(self, names=OPTION_NAMES):
        check_sampling(self.temperature, self.top_k, self.top_p, names=names)
        return self


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
    """Decoding chosen at run time. All None: the settings baked into the export are used.

    When any is set, the `translate_options` signature runs with: `beam_size` (default: n_best),
    `alpha` (default: `default_alpha`, the project's `decode.alpha`) and `n_best` (default 1);
    when a constraint (`min_length`, `no_repeat_ngram_size`, `prefix`) is set too, the
    `translate_constrained` signature, the unset constraints off.
    """

    beam_size: int | None = None
    alpha: float | None = None
    n_best: int | None = None
    default_alpha: float = 0.6
    min_length: int | None = None
    no_repeat_ngram_size: int | None = None
    prefix: str | None = None

    @property
    def baked(self) -> bool:
        beam = (self.beam_size, self.alpha, self.n_best)
        return all(value is None for value in beam) and not self.constrained

    @property
    def constrained(self) -> bool:
        constraints = (self.min_length, self.no_repeat_ngram_size, self.prefix)
        return any(value is not None for value in constraints)

    def constraints(self) -> tuple[int, int, str]:
        """(min_length, no_repeat_ngram_size, prefix), unset ones off (0, 0, "")."""
        check_constraints(self.min_length, self.no_repeat_ngram_size, names=OPTION_NAMES)
        return self.min_length or 0, self.no_repeat_ngram_size or 0, self.prefix or ""

    def resolve(self, names=OPTION_NAMES) -> tuple[int, float, int]:
        """(beam_size, alpha, n_best) with defaults filled in.

        Raises:
            ValueError: The combination is invalid (the settings are named by `names`).
        """
        n_best = 1 if self.n_best is None else self.n_best
        beam_size = n_best if self.beam_size is None else self.beam_size
        alpha = self.default_alpha if self.alpha is None else self.alpha
        check_beam_settings(beam_size, alpha, n_best, names=names)
        if self.alpha is not None and beam_size == 1:
            raise ValueError(
                f"{names['alpha']} has no effect with greedy search: add {names['beam_size']} > 1"
            )
        return beam_size, alpha, n_best

    def describe(self) -> dict:
        """The settings for reports: the signature used and, if chosen, the options."""
        if self.baked:
            return {"signature": "serving_default"}
        beam_size, alpha, n_best = self.resolve()
        described = {
            "signature": "translate_options",
            "beam_size": beam_size,
            "alpha": alpha,
            "n_best": n_best,
        }
        if self.constrained:
            min_length, no_repeat_ngram_size, prefix = self.constraints()
            described.update(
                signature="translate_constrained",
                min_length=min_length,
                no_repeat_ngram_size=no_repeat_ngram_size,
                prefix=prefix,
            )
        return described
