#!/usr/bin/python3
"""Reference for cliphba's image preprocessing: PIL's resize((S, S), BILINEAR) of small generated
images, for tests/data/image_test.cc (which reports max |cliphba - PIL| in 8-bit levels).
Writes tests/data_files/image_reference/{photo.png, photo.jpg, pil_resized_png_32.npy, ...}.
Run with Debian's python: /usr/bin/python3 scripts/reference/image_reference.py"""
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data_files",
                   "image_reference")


def main():
    os.makedirs(OUT, exist_ok=True)
    h, w = 61, 83  # odd sizes: non-integer scale factors both ways
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 255 // (w - 1)), (yy * 255 // (h - 1)),
                    ((np.sin(xx / 5.0) * np.cos(yy / 7.0) + 1) * 127.5).astype(int)], -1)
    img = img.astype(np.uint8)
    Image.fromarray(img).save(os.path.join(OUT, "photo.png"))
    Image.fromarray(img).save(os.path.join(OUT, "photo.jpg"), quality=95)
    np.save(os.path.join(OUT, "photo_rgb.npy"), img)
    for size in (32, 128):  # downsampling and upsampling
        r = Image.fromarray(img).resize((size, size), Image.BILINEAR)
        np.save(os.path.join(OUT, f"pil_bilinear_{size}.npy"), np.asarray(r))


if __name__ == "__main__":
    main()
