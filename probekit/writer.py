"""ImageSetWriter: how a probe emits its image set.

    from probekit import ImageSetWriter
    with ImageSetWriter(title="…", attribute="skin_tone", groups=["lighter", "darker"]) as out:
        out.add(image, id="f01-light", base="f01", regions=[("lighter", (120, 40, 200, 260))])

Images go to `images/<id>.png` under PROBE_OUTPUT_DIR (default ./out when run locally);
manifest.json is written when the block ends without an error.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image

from probekit.imageset import COMPOSE_MODES, ITEM_ID, SCHEMA_VERSION

DUPLICATE_ID = "item id {id!r} was already added"
BAD_ID = "item id {id!r} must be 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit"
UNKNOWN_GROUP = "region group {group!r} is not one of {groups}"
BAD_PRIMARY = "primary {id!r} must be a test id '<kind>:<first>><second>[@<ratio>]' naming two of {groups}"


def output_dir() -> Path:
    return Path(os.environ.get("PROBE_OUTPUT_DIR") or "out")


class ImageSetWriter:
    def __init__(self, out_dir: str | os.PathLike | None = None, *, groups: list[str], title: str = "",
                 hypothesis: str = "", attribute: str = "", compose: str = "none", pairs_per_image: int | None = None,
                 primary: str | None = None):
        if compose not in COMPOSE_MODES:
            raise ValueError(f"compose must be one of {COMPOSE_MODES}, got {compose!r}")
        self.root = Path(out_dir) if out_dir is not None else output_dir()
        self.groups = list(groups)
        self.manifest = {"schema": SCHEMA_VERSION, "title": title, "hypothesis": hypothesis,
                         "attribute": attribute, "groups": self.groups, "compose": compose, "items": []}
        if pairs_per_image is not None:
            self.manifest["pairs_per_image"] = pairs_per_image
        if primary is not None:
            self.preregister(primary)
        self._ids: set[str] = set()
        (self.root / "images").mkdir(parents=True, exist_ok=True)

    def add(self, image: Image.Image, *, id: str, regions, base: str | None = None, format: str = "png") -> str:
        """Save `image` and list it; `regions` is [(group, (x, y, w, h)), ...] or dicts. Returns its path."""
        if not ITEM_ID.match(id):
            raise ValueError(BAD_ID.format(id=id))
        if id in self._ids:
            raise ValueError(DUPLICATE_ID.format(id=id))
        listed = []
        for region in regions:
            group, box = (region["group"], region["box"]) if isinstance(region, dict) else region
            if group not in self.groups:
                raise ValueError(UNKNOWN_GROUP.format(group=group, groups=self.groups))
            listed.append({"group": group, "box": [int(v) for v in box]})
        extension = "jpg" if format.lower() in ("jpg", "jpeg") else "png"
        relative = f"images/{id}.{extension}"
        image = image if image.mode in ("RGB", "L") else image.convert("RGB")
        image.save(self.root / relative, format="JPEG" if extension == "jpg" else "PNG",
                   **({"quality": 95} if extension == "jpg" else {"compress_level": 1}))
        entry = {"id": id, "image": relative, "regions": listed}
        if base is not None:
            entry["base"] = base
        self.manifest["items"].append(entry)
        self._ids.add(id)
        return relative

    def preregister(self, test_id: str) -> None:
        """Name the one test that matters, before any result is seen: it is tested first at the full α
        (e.g. "preference:lighter>darker" or "group_rate:lighter>darker@1.0"; groups in the listed order)."""
        kind, _, rest = test_id.partition(":")
        first, _, second = rest.partition("@")[0].partition(">")
        if not kind or first not in self.groups or second not in self.groups:
            raise ValueError(BAD_PRIMARY.format(id=test_id, groups=self.groups))
        self.manifest["primary"] = test_id

    def write(self) -> Path:
        path = self.root / "manifest.json"
        path.write_text(json.dumps(self.manifest, indent=1, ensure_ascii=False), encoding="utf-8")
        return path

    def __enter__(self) -> "ImageSetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.write()
