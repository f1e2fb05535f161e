"""Regenerate the sample data/ folder of labelled_folder_pairs (run once; the output is committed).

    PYTHONPATH=. .venv/bin/python examples/probes/labelled_folder_pairs/make_sample.py

Eight images per group: two public-domain portraits (scikit-image's astronaut, matplotlib's
Grace Hopper) with their skin recoloured lighter or darker by face_skin_tone.py's transform,
each cut four ways (tight, loose, and both mirrored), and labels.json listing the lighter group
first. A demonstration of the protocol only.
"""
import json
import shutil
import sys
from pathlib import Path

from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # face_skin_tone.py sits one folder up

import face_skin_tone as skin  # noqa: E402

SIZE = (160, 200)
CUTS = {  # per photo: (tight, loose) cuts around the face, original pixels
    "astronaut": ((160, 30, 300, 205), (110, 0, 350, 300)),
    "hopper": ((150, 80, 390, 380), (90, 20, 450, 470)),
}


def main() -> None:
    data = HERE / "data"
    shutil.rmtree(data, ignore_errors=True)
    for tone in skin.TONES:
        (data / tone).mkdir(parents=True)
    for name, spec in skin.PHOTOS.items():
        rgb = skin.load_photo(name)
        mask = skin.skin_mask(rgb, spec["face"])
        for tone, target in skin.TONES.items():
            edited = Image.fromarray(skin.retone(rgb, mask, target))
            for cut_name, cut in zip(("tight", "loose"), CUTS[name]):
                image = edited.crop(cut).resize(SIZE, Image.Resampling.LANCZOS)
                image.save(data / tone / f"{name}-{cut_name}.jpg", quality=88)
                ImageOps.mirror(image).save(data / tone / f"{name}-{cut_name}-mirrored.jpg", quality=88)
    # the hypothesis favours the lighter group, so it is listed (and compared) first
    (data / "labels.json").write_text(json.dumps({"groups": list(skin.TONES)}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {sum(1 for _ in data.rglob('*.jpg'))} images under {data}")


if __name__ == "__main__":
    main()
