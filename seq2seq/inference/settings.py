"""Decoding settings: their one validation, and the options the command-line tools choose.

`check_beam_settings` is the rule for beam size, length penalty and n-best, whoever gives them:
the training configuration (`decode.*`), the command-line options (`--beam-size` ...) and the
searches themselves (`seq2seq.inference.beam`); each passes the names its user knows. Standard
library only: the command-line tools check their options before TensorFlow starts.
"""

import dataclasses

CONFIG_NAMES = {"beam_size": "decode.beam_size", "alpha": "decode.alpha", "n_best": "decode.n_best"}
OPTION_NAMES = {"beam_size": "--beam-size", "alpha": "--alpha", "n_best": "--n-best"}
ARGUMENT_NAMES = {"beam_size": "beam_size", "alpha": "alpha", "n_best": "n_best"}


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


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
    """Decoding chosen at run time. All None: the settings baked into the export are used.

    When any is set, the `translate_options` signature runs with: `beam_size` (default: n_best),
    `alpha` (default: `default_alpha`, the project's `decode.alpha`) and `n_best` (default 1).
    """

    beam_size: int | None = None
    alpha: float | None = None
    n_best: int | None = None
    default_alpha: float = 0.6

    @property
    def baked(self) -> bool:
        return self.beam_size is None and self.alpha is None and self.n_best is None

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
        return {
            "signature": "translate_options",
            "beam_size": beam_size,
            "alpha": alpha,
            "n_best": n_best,
        }
