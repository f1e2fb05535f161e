"""Does the crop prefer lighter skin-tone emoji over darker ones?

Hypothesis
    Shown the same emoji in two Fitzpatrick skin-tone modifiers, a saliency cropper keeps the
    lighter one more often than parity (0.5) would.

Background
    The 2021 Twitter algorithmic bias bounty's "most innovative" award went to an entry showing
    that the cropper picked the light-skin-tone emoji about 17% more often than a baseline in
    side-by-side images. Twitter's own study (Yee, Tantipongpipat & Mishra 2021, "Image
    Cropping on Twitter: Fairness Metrics, their Limitations, and the Importance of
    Representation, Design, and Agency", CSCW 2021) measured the same kind of preference for
    photographed faces. This probe re-creates the emoji design from its public description;
    no code of the entry is used.

Method
    Six emoji that take a skin-tone modifier (thumbs up, waving hand, raised hand, person,
    person raising hand, folded hands) are drawn with Noto Color Emoji (Debian
    fonts-noto-color-emoji; Pillow at its only bitmap size, 109, with embedded_color=True and
    the raqm layout, which joins emoji + modifier into one glyph). Groups are the five
    modifiers U+1F3FB..U+1F3FF, lightest first, so a preference estimate above 0.5 always means
    "the lighter tone of the pair won". Every pair of tones is laid out in both orders — side
    by side for half the emoji, stacked for the other half — on one of four backgrounds
    (cycling, so every background meets every tone), so slot position cannot pose as a tone
    effect; the two orders share a `base`, so the platform also reports the paired difference
    in kept share. 6 emoji × 10 tone pairs × 2 orders = 120 composites, 12 per tone pair:
    enough to see a large preference, not a 5% one — add emoji for power.

What a synthetic set can and cannot show
    Emoji are drawn artwork: the modifiers change only the skin colour, nothing else, which
    makes this the cleanest counterfactual in the examples. A preference here shows how the
    target treats these glyphs on these backgrounds; it does not by itself show the same gap
    for photographs of people, and colour contrast against the background (dark tones on a
    dark background) is part of the mechanism, so read the result per background as well.

References
    Yee, Tantipongpipat & Mishra (2021), arXiv:2105.08667; Twitter's image-crop-analysis
    repository; the 2021 bounty results (DEF CON AI Village, "most innovative" entry).
"""
import itertools
import sys

from PIL import Image, ImageDraw, ImageFont, features

from probekit import ImageSetWriter

FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
SIZE = 109  # Noto Color Emoji is a bitmap font: 109 is its one native size
TONES = {  # group name -> Fitzpatrick modifier, lightest first
    "light": "\U0001F3FB",
    "medium-light": "\U0001F3FC",
    "medium": "\U0001F3FD",
    "medium-dark": "\U0001F3FE",
    "dark": "\U0001F3FF",
}
EMOJI = {
    "thumbs": "\U0001F44D",
    "wave": "\U0001F44B",
    "hand": "\u270B",
    "person": "\U0001F9D1",
    "raise": "\U0001F64B",
    "pray": "\U0001F64F",
}
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128), "blue": (29, 161, 242)}
TILE = 150  # each emoji sits centred in a TILE×TILE slot; the region is the whole slot
GAP = 40


def require_raqm() -> None:
    """Without raqm an emoji and its modifier render as two glyphs: the set would be wrong."""
    if not features.check("raqm"):
        sys.exit("emoji_skin_tone: Pillow was built without raqm (libraqm); emoji modifiers cannot be joined")


def draw_emoji(text: str, font: ImageFont.FreeTypeFont) -> Image.Image:
    layer = Image.new("RGBA", (TILE, TILE), (0, 0, 0, 0))
    left, top, right, bottom = ImageDraw.Draw(layer).textbbox((0, 0), text, font=font, embedded_color=True)
    origin = ((TILE - (right - left)) // 2 - left, (TILE - (bottom - top)) // 2 - top)
    ImageDraw.Draw(layer).text(origin, text, font=font, embedded_color=True)
    return layer


def composite(first: Image.Image, second: Image.Image, background, horizontal: bool):
    """Two tiles with a gap and a margin; returns the image and the two slot boxes."""
    if horizontal:
        size, slots = (2 * TILE + 3 * GAP, TILE + 2 * GAP), [(GAP, GAP), (TILE + 2 * GAP, GAP)]
    else:
        size, slots = (TILE + 2 * GAP, 2 * TILE + 3 * GAP), [(GAP, GAP), (GAP, TILE + 2 * GAP)]
    canvas = Image.new("RGB", size, background)
    for tile, (x, y) in zip((first, second), slots):
        canvas.paste(tile, (x, y), tile)
    return canvas, [(x, y, TILE, TILE) for x, y in slots]


def main() -> None:
    require_raqm()
    font = ImageFont.truetype(FONT, SIZE, layout_engine=ImageFont.Layout.RAQM)
    backgrounds = list(BACKGROUNDS.items())
    writer = ImageSetWriter(
        title="Emoji skin-tone modifiers side by side",
        hypothesis="the crop keeps the lighter skin-tone emoji more often than parity",
        attribute="emoji_skin_tone",
        groups=list(TONES),
    )
    with writer:
        for index, (emoji_name, emoji) in enumerate(EMOJI.items()):
            tiles = {tone: draw_emoji(emoji + modifier, font) for tone, modifier in TONES.items()}
            horizontal = index % 2 == 0  # half the emoji side by side, half stacked
            for light, dark in itertools.combinations(TONES, 2):
                # one background per (emoji, pair), cycling, so every background meets every tone
                turn = index + list(TONES).index(light) + list(TONES).index(dark)
                bg_name, bg = backgrounds[turn % len(backgrounds)]
                base = f"{emoji_name}-{light}-{dark}-{bg_name}"
                for order in ((light, dark), (dark, light)):
                    image, boxes = composite(tiles[order[0]], tiles[order[1]], bg, horizontal)
                    writer.add(image, id=f"{base}-{order[0]}-first", base=base,
                               regions=[(order[0], boxes[0]), (order[1], boxes[1])])
    print(f"emoji_skin_tone: wrote {len(writer.manifest['items'])} composites")


if __name__ == "__main__":
    main()
