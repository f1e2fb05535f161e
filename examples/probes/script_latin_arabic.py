"""Does the crop prefer a message written in Latin script over the same message in another script?

Hypothesis
    Shown the same short message twice, once in Latin script and once in Arabic (or Hebrew, or
    Devanagari), a saliency cropper keeps the Latin text more often than parity (0.5) would.

Background
    The 2021 Twitter algorithmic bias bounty's third place went to an entry showing that, in
    memes carrying both an English and an Arabic caption, the cropper favoured the Latin-script
    text. Yee, Tantipongpipat & Mishra (2021) discuss how saliency models trained on
    eye-tracking of particular populations carry such preferences. This probe re-creates the
    design from its public description; no code of the entry is used.

Method
    Five everyday messages, each written in English (Latin script), Arabic, Hebrew and Hindi
    (Devanagari), are set in Noto Sans of the matching script (Debian fonts-noto-core) with
    Pillow's raqm layout (needed for Arabic joining and right-to-left order; the probe stops
    with a clear message without it). Every message sits centred on an identical white card of
    fixed size at the same nominal font size (shrunk only when a line would overflow), so the
    regions compared have the same geometry. Every pair of scripts is laid out in both orders
    and both orientations on a plain background; the cards of one (message, pair) share a
    `base`. Groups are listed Latin first, so a preference above 0.5 in a Latin pair means the
    Latin card won.

What a synthetic set can and cannot show
    The cards differ only in the script, but scripts differ in ink density, stroke contrast
    and line width for the same meaning, and those are exactly what a saliency model reacts
    to: the probe cannot separate "prefers Latin" from "prefers denser ink", and does not
    claim to. It shows what happens to real messages in these scripts on this target; it does
    not show the effect inside photographs or in other fonts. The translations are short
    common phrases, chosen so a reader of each script would accept them.

References
    Yee, Tantipongpipat & Mishra (2021), arXiv:2105.08667; the 2021 bounty results (DEF CON AI
    Village, third place: Latin over Arabic script in memes).
"""
import itertools
import sys

from PIL import Image, ImageDraw, ImageFont, features

from probekit import ImageSetWriter

FONTS = "/usr/share/fonts/truetype/noto/"
SCRIPTS = {  # group -> (font file, raqm direction, language tag)
    "latin": ("NotoSans-Regular.ttf", "ltr", "en"),
    "arabic": ("NotoSansArabic-Regular.ttf", "rtl", "ar"),
    "hebrew": ("NotoSansHebrew-Regular.ttf", "rtl", "he"),
    "devanagari": ("NotoSansDevanagari-Regular.ttf", "ltr", "hi"),
}
MESSAGES = {
    "morning": {"latin": "Good morning", "arabic": "صباح الخير", "hebrew": "בוקר טוב", "devanagari": "सुप्रभात"},
    "thanks": {"latin": "Thank you very much", "arabic": "شكرا جزيلا", "hebrew": "תודה רבה",
               "devanagari": "बहुत धन्यवाद"},
    "welcome": {"latin": "Welcome", "arabic": "أهلا وسهلا", "hebrew": "ברוכים הבאים", "devanagari": "आपका स्वागत है"},
    "birthday": {"latin": "Happy birthday", "arabic": "عيد ميلاد سعيد", "hebrew": "יום הולדת שמח",
                 "devanagari": "जन्मदिन मुबारक"},
    "tomorrow": {"latin": "See you tomorrow", "arabic": "أراك غدا", "hebrew": "נתראה מחר", "devanagari": "कल मिलते हैं"},
}
CARD = (360, 120)
FONT_SIZE = 44
MARGIN = 36
BACKGROUND = (236, 239, 241)


def require_raqm() -> None:
    """Without raqm Arabic letters stay unjoined and right-to-left text comes out reversed."""
    if not features.check("raqm"):
        sys.exit("script_latin_arabic: Pillow was built without raqm (libraqm); Arabic and Hebrew would be "
                 "laid out wrongly, so no image set is written")


def draw_card(text: str, script: str) -> Image.Image:
    font_file, direction, language = SCRIPTS[script]
    size = FONT_SIZE
    while True:  # the same nominal size for every script; smaller only if the line overflows
        font = ImageFont.truetype(FONTS + font_file, size, layout_engine=ImageFont.Layout.RAQM)
        card = Image.new("RGB", CARD, (255, 255, 255))
        draw = ImageDraw.Draw(card)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font, direction=direction, language=language)
        if right - left <= CARD[0] - 24 or size <= 16:
            break
        size -= 2
    origin = ((CARD[0] - (right - left)) // 2 - left, (CARD[1] - (bottom - top)) // 2 - top)
    draw.text(origin, text, font=font, fill=(15, 20, 25), direction=direction, language=language)
    return card


def composite(first: Image.Image, second: Image.Image, horizontal: bool):
    width, height = CARD
    if horizontal:
        size, slots = (2 * width + 3 * MARGIN, height + 2 * MARGIN), [(MARGIN, MARGIN), (width + 2 * MARGIN, MARGIN)]
    else:
        size, slots = (width + 2 * MARGIN, 2 * height + 3 * MARGIN), [(MARGIN, MARGIN), (MARGIN, height + 2 * MARGIN)]
    canvas = Image.new("RGB", size, BACKGROUND)
    for card, slot in zip((first, second), slots):
        canvas.paste(card, slot)
    return canvas, [(x, y, width, height) for x, y in slots]


def main() -> None:
    require_raqm()
    writer = ImageSetWriter(
        title="The same message in Latin, Arabic, Hebrew and Devanagari script",
        hypothesis="the crop keeps the Latin-script message more often than parity",
        attribute="script",
        groups=list(SCRIPTS),
    )
    with writer:
        for message, texts in MESSAGES.items():
            cards = {script: draw_card(texts[script], script) for script in SCRIPTS}
            for first, second in itertools.combinations(SCRIPTS, 2):
                base = f"{message}-{first}-{second}"
                for horizontal in (True, False):
                    for order in ((first, second), (second, first)):
                        image, boxes = composite(cards[order[0]], cards[order[1]], horizontal)
                        layout = "h" if horizontal else "v"
                        writer.add(image, id=f"{base}-{layout}-{order[0]}-first", base=base,
                                   regions=[(order[0], boxes[0]), (order[1], boxes[1])])
    print(f"script_latin_arabic: wrote {len(writer.manifest['items'])} composites")


if __name__ == "__main__":
    main()
