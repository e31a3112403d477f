"""A reverse image search to beat: a near-duplicate index over a gallery of photos and their everyday variants.

A reverse image search (TinEye, a photo host's duplicate finder) does not classify: it finds near-copies. The
index holds every gallery photo (app/ml/packs/natural.py's sources, plus any other photos that ship inside the
installed packages) and its everyday variants (:data:`GALLERY_VARIANTS`: JPEG, resize, a slight crop, brightness),
described by each engine:

- ``phash``: the perceptual hash of ``imagehash`` (DCT of the 32x32 grey image, 64 sign bits), Hamming distance;
- ``embedding``: EfficientNet-Lite0's pooled features (1280 numbers), cosine distance;
- held out (the attack never sees them): ``pdq`` (Meta's PDQ hash from ``pdqhash``, 256 bits) and
  ``embedding-lite2`` (EfficientNet-Lite2's features).

Each engine's match threshold is the largest distance between a gallery photo and one of its own variants, so
every variant is found; :meth:`SearchIndex.false_matches` counts the pairs of different photos that fall within
it (the tests require none). A query finds a reference photo when the reference ranks in the top ``k`` of the
gallery, or lies within the threshold; a cloak *beats* an engine when neither holds.

numpy, Pillow, imagehash and pdqhash only: the embeddings are passed in as functions (torch stays in the engine).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageEnhance

from app.ml.cloak.uploads import validate_upload

Kind = Literal["bits", "vector"]
Describe = Callable[[Sequence[np.ndarray]], np.ndarray]  # images -> (n, d) descriptors
TOP_K = 5
GALLERY_SIDE = 512  # gallery photos are scaled to this long side before they are described
GALLERY_VARIANTS = ("JPEG 70", "resized to 50%", "97% crop", "brightness +15%", "brightness -15%")


def phash_bits(pixels: np.ndarray) -> np.ndarray:
    import imagehash

    return np.asarray(imagehash.phash(Image.fromarray(pixels)).hash, dtype=bool).reshape(-1)


def pdq_bits(pixels: np.ndarray) -> np.ndarray:
    import pdqhash  # type: ignore[import-untyped]

    bits, _quality = pdqhash.compute(np.ascontiguousarray(pixels))
    return np.asarray(bits, dtype=bool).reshape(-1)


def hashes(fn: Callable[[np.ndarray], np.ndarray]) -> Describe:
    return lambda images: np.stack([fn(image) for image in images])


def jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return np.array(image.convert("RGB"), dtype=np.uint8)


def resized(pixels: np.ndarray, *, scale: float | None = None, long_side: int | None = None) -> np.ndarray:
    image = Image.fromarray(pixels)
    factor = scale if scale is not None else (long_side or max(image.size)) / max(image.size)
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return np.array(image.resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)


def centre_crop(pixels: np.ndarray, fraction: float) -> np.ndarray:
    h, w = pixels.shape[:2]
    dh, dw = round(h * (1 - fraction) / 2), round(w * (1 - fraction) / 2)
    return np.ascontiguousarray(pixels[dh : h - dh, dw : w - dw])


def brightness(pixels: np.ndarray, factor: float) -> np.ndarray:
    return np.array(ImageEnhance.Brightness(Image.fromarray(pixels)).enhance(factor), dtype=np.uint8)


def gallery_variants(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """The everyday copies a search must still find (:data:`GALLERY_VARIANTS`, in that order)."""
    out = (
        jpeg(pixels, 70),
        resized(pixels, scale=0.5),
        centre_crop(pixels, 0.97),
        brightness(pixels, 1.15),
        brightness(pixels, 0.85),
    )
    return dict(zip(GALLERY_VARIANTS, out, strict=True))


@dataclass(frozen=True)
class GalleryPhoto:
    name: str
    path: Path
    credit: str


def package_file(package: str, relative: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except ImportError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    return path if path.is_file() else None


# Open-licence photos inside installed wheels (scikit-image, scikit-learn, matplotlib: the imagenet extra and the
# core dependencies), then Foolbox's 20 ImageNet validation photos (224x224) when the dev extra is installed.
PACKAGE_PHOTOS = (
    ("skimage.data", "astronaut.png", "scikit-image 'astronaut' (NASA), public domain"),
    ("skimage.data", "chelsea.png", "scikit-image 'chelsea' (Stefan van der Walt), CC0"),
    ("skimage.data", "coffee.png", "scikit-image 'coffee' (Rachel Michetti), CC0"),
    ("skimage.data", "rocket.jpg", "scikit-image 'rocket' (SpaceX), public domain"),
    ("skimage.data", "motorcycle_left.png", "scikit-image 'motorcycle' (Middlebury stereo), CC0"),
    ("sklearn.datasets", "images/china.jpg", "scikit-learn 'china.jpg' (danielbuechele on Flickr), CC BY 2.0"),
    ("sklearn.datasets", "images/flower.jpg", "scikit-learn 'flower.jpg' (Ulrich Hermann), CC BY 2.0"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "matplotlib 'grace_hopper.jpg' (US Navy), public domain"),
)


def gallery_photos(extra_dir: Path | None = None) -> list[GalleryPhoto]:
    """Every offline photo the gallery can hold: the package photos, then ``extra_dir``'s (any depth)."""
    photos = []
    for package, relative, credit in PACKAGE_PHOTOS:
        path = package_file(package, relative)
        if path is not None:
            photos.append(GalleryPhoto(Path(relative).stem, path, credit))
    foolbox = package_file("foolbox", "__init__.py")
    if foolbox is not None:
        for path in sorted((foolbox.parent / "data").glob("imagenet_*.jpg")):
            photos.append(GalleryPhoto(path.stem, path, "Foolbox's ImageNet validation sample (dev extra)"))
    if extra_dir is not None and extra_dir.is_dir():
        for path in sorted(extra_dir.rglob("*")):
            if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") and path.is_file():
                photos.append(GalleryPhoto(f"{path.parent.name}/{path.stem}", path, "added by the operator"))
    return photos


def load_photo(photo: GalleryPhoto, side: int = GALLERY_SIDE) -> np.ndarray:
    return validate_upload(photo.path.read_bytes(), max_side=side).pixels


@dataclass(frozen=True)
class Engine:
    name: str
    kind: Kind
    describe: Describe
    held_out: bool = False

    def distances(self, query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """Hamming distance (bits) or cosine distance of one query descriptor to each row of ``gallery``."""
        if self.kind == "bits":
            return np.asarray((gallery != query[None, :]).sum(axis=1), dtype=np.float64)
        q = query / max(float(np.linalg.norm(query)), 1e-12)
        g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
        return np.asarray(1.0 - g @ q, dtype=np.float64)


@dataclass(frozen=True)
class Match:
    engine: str
    rank: int  # 1 + how many gallery entries of other photos are strictly closer than the reference
    distance: float
    threshold: float
    k: int

    @property
    def found(self) -> bool:
        return self.rank <= self.k or self.distance <= self.threshold

    @property
    def beaten(self) -> bool:
        return not self.found

    @property
    def past_threshold(self) -> bool:
        """The engine's matcher alone reports no near-duplicate (a weaker win than ``beaten``)."""
        return self.distance > self.threshold


class SearchIndex:
    """Descriptors of every gallery entry (photo x {original, variants}) for each engine, and the thresholds."""

    def __init__(
        self,
        names: list[str],
        entries: list[tuple[int, str]],
        descriptors: dict[str, np.ndarray],
        engines: list[Engine],
    ) -> None:
        self.names = names
        self.entries = entries  # (photo number, variant name or "original")
        self.descriptors = descriptors
        self.engines = {engine.name: engine for engine in engines}
        self.photo_of = np.array([photo for photo, _ in entries])
        self.originals = {photo: i for i, (photo, variant) in enumerate(entries) if variant == "original"}
        self.thresholds = {engine.name: self.variant_distances(engine.name).max() for engine in engines}

    @classmethod
    def build(
        cls,
        photos: dict[str, np.ndarray],
        engines: list[Engine],
        cache_dir: Path | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> SearchIndex:
        names = list(photos)
        images, entries = [], []
        for number, name in enumerate(names):
            images.append(photos[name])
            entries.append((number, "original"))
            for variant, pixels in gallery_variants(photos[name]).items():
                images.append(pixels)
                entries.append((number, variant))
        digest = hashlib.sha256(json.dumps([names, [e.name for e in engines], GALLERY_VARIANTS]).encode())
        for image in images[:: len(GALLERY_VARIANTS) + 1]:
            digest.update(image.tobytes())
        cached = cache_dir / f"index-{digest.hexdigest()[:24]}.npz" if cache_dir is not None else None
        if cached is not None and cached.is_file():
            with np.load(cached) as stored:
                return cls(names, entries, {e.name: stored[e.name] for e in engines}, engines)
        descriptors = {}
        for done, engine in enumerate(engines):
            descriptors[engine.name] = np.asarray(engine.describe(images))
            if progress is not None:
                progress(done + 1, len(engines))
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cached, **descriptors)  # type: ignore[arg-type]
        return cls(names, entries, descriptors, engines)

    def variant_distances(self, engine: str) -> np.ndarray:
        """Distance of every variant to its own photo's original."""
        e, table = self.engines[engine], self.descriptors[engine]
        return np.array(
            [
                e.distances(table[self.originals[photo]], table[i : i + 1])[0]
                for i, (photo, variant) in enumerate(self.entries)
                if variant != "original"
            ]
        )

    def false_matches(self, engine: str) -> list[tuple[str, str, str, float]]:
        """(entry's photo, its variant, other photo, distance) for every entry within the threshold of the
        original of a different photo."""
        e, table, limit = self.engines[engine], self.descriptors[engine], self.thresholds[engine]
        out = []
        for other, row in self.originals.items():
            distances = e.distances(table[row], table)
            for i in np.flatnonzero((distances <= limit) & (self.photo_of != other)):
                photo, variant = self.entries[int(i)]
                out.append((self.names[photo], variant, self.names[other], float(distances[i])))
        return out

    def lookup(
        self, engine: str, query: np.ndarray, reference: np.ndarray, k: int = TOP_K, exclude: int | None = None
    ) -> Match:
        """Does a search for ``query`` find the photo whose descriptor is ``reference`` (e.g. the uploaded
        original), in a gallery of every indexed entry plus that reference? ``exclude``: a gallery photo number
        left out (the photo being cloaked, when it is one of the gallery's own)."""
        e = self.engines[engine]
        distance = float(e.distances(query, reference[None, :])[0])
        distances = e.distances(query, self.descriptors[engine])
        if exclude is not None:
            distances = distances[self.photo_of != exclude]
        closer = int((distances < distance).sum())
        return Match(engine, closer + 1, distance, float(self.thresholds[engine]), k)

    def lookup_entry(self, engine: str, query: np.ndarray, photo: int, k: int = TOP_K) -> Match:
        """Does a search for ``query`` find gallery photo number ``photo`` (ranked against the other photos)?"""
        e, table = self.engines[engine], self.descriptors[engine]
        distances = e.distances(query, table)
        own = distances[self.photo_of == photo].min()
        closer = int((distances[self.photo_of != photo] < own).sum())
        return Match(engine, closer + 1, float(own), float(self.thresholds[engine]), k)

    def decoy(self, engine: str, descriptor: np.ndarray) -> np.ndarray:
        """The descriptor of the gallery photo nearest to ``descriptor`` that is not that photo itself (farther
        than the threshold): the cloak moves toward it, so that other photos outrank the original."""
        rows = [self.originals[photo] for photo in sorted(self.originals)]
        table = self.descriptors[engine][rows]
        distances = self.engines[engine].distances(descriptor, table)
        distances[distances <= self.thresholds[engine]] = np.inf
        return np.asarray(table[int(np.argmin(distances))], dtype=np.float32)[None, :]
