"""Every problem of an image set at once, so a participant fixes them in one round.

The validator (`probekit.imageset.validate_image_set`) checks the independent parts of a set
apart (each header field, the texts, each item) and collects what each breaks, up to
`MAX_PROBLEMS`, each message naming the item and the rule. One problem reads exactly as it always
did; several are listed, numbered. A problem after which the rest cannot be checked, or would cost
too much to check (no manifest, more images than allowed, the set's bytes over the cap), stops the
check at once, with what was found before it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

# More than a participant can take in at once; a set with more has a systematic fault anyway.
MAX_PROBLEMS = 20


class Problems:
    """The problems found so far; `check()` records the `error` a block raises and goes on."""

    def __init__(self, error: type[Exception], stop: tuple[type[Exception], ...] = ()):
        self.error, self.stop = error, stop
        self.found: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.found)

    @contextlib.contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except self.error as exc:
            self.found.append(str(exc))
            if isinstance(exc, self.stop) or len(self.found) >= MAX_PROBLEMS:
                raise self.rejected(stopped=True) from None

    def rejected(self, *, stopped: bool = False) -> Exception:
        """One exception for everything found: the problem itself when there is one, else a numbered list."""
        if len(self.found) == 1:
            return self.error(self.found[0])
        if len(self.found) >= MAX_PROBLEMS:
            head = f"the image set has at least {len(self.found)} problems (the check stopped there)"
        elif stopped:
            head = f"the image set has {len(self.found)} problems (the check stopped at the last one)"
        else:
            head = f"the image set has {len(self.found)} problems"
        return self.error(head + ":\n" + "\n".join(f"{k}. {text}" for k, text in enumerate(self.found, 1)))

    def raise_found(self) -> None:
        if self.found:
            raise self.rejected()
