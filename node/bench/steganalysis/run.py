"""bench:steganalysis - classic detectors against StegoCluster, stepic and sequential LSB replacement.

Covers are 256x256 crops of real photographs shipped inside two packages, fetched once into
~/.cache/stegocluster/steganalysis and read from there (nothing is installed or imported):
  - scikit-image's wheel (skimage/data), fetched with `pip download`, read as a zip;
  - Debian's lomiri-wallpapers-16.04 (the Ubuntu 16.04 community wallpaper photographs), fetched with
    `apt-get download`, read with `dpkg-deb --fsys-tarfile`; only the 11 that are plain photographs are used.
Non-overlapping crops on a 256-pixel grid; crops that are nearly flat or clipped are dropped (they carry
no LSB noise for any detector to work with, and flatter nobody); of the crops left, at most 16 per
photograph, evenly spaced in raster order, so that no photograph dominates (the cameras' multi-megapixel
photographs would otherwise give over 1,000 covers). The `--quick` run uses the wheel's photographs only.

For every cover and every payload rate (bits per colour sample), four stego images are made:
  - StegoCluster with a passphrase   (node dist/node/bench/steganalysis/embed-batch.js)
  - StegoCluster without passphrase
  - stepic (Debian's stepic 0.5: LSB replacement, sequential from the top-left pixel)
  - plain sequential LSB replacement of the first rate*N samples with random bits
Every detector scores every image; ROC AUC (cover vs stego, fixed direction) is reported per tool,
detector and rate, and ROC plots are written as PNGs.

Cover sources, stated before any result: six of the wheel's nine photographs are PNGs (never lossily
compressed as far as the package tells); its other three (rocket, retina, hubble_deep_field) and all the
wallpaper photographs are JPEGs decoded to RGB. JPEG
decompression leaves 8x8 block structure and quantised values behind, which biases the LSB estimators
and is a separate cover source in the steganalysis literature. Every crop of both kinds is used: the main
table is over all covers, and the same AUCs are also reported for each source apart (no cover is ever
dropped for how it scores).

Every detector family (detectors.py) is run in its whole-image form and, for the LSB-replacement
families, in prefix forms that scan growing prefixes of the rows, the same for every image. The goal
of issue 14 is summarised per family by its best variant for stepic and its worst for StegoCluster
(goal_summary; docs/steganalysis.md says how it is judged).

Usage: run.py [--out DIR] [--quick] [--json FILE] [--jobs N] [--crop PIXELS] [--max-per-photo N]
  --out DIR   write roc-<rate>.png there (default: no plots)
  --quick     6 covers, rate 0.4 only (the CI test's smoke run); prints JSON
  --json FILE also write all scores and AUCs as JSON
  --jobs N    processes scoring images (default 2, the machine's cores)
  --crop PIXELS, --max-per-photo N   cover size and most crops per photograph (default 256 and 16)
"""

import argparse
import concurrent.futures
import io
import itertools
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detectors  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
CACHE = os.path.join(os.path.expanduser('~'), '.cache', 'stegocluster', 'steganalysis')
WHEEL_SPEC = 'scikit-image==0.24.0'
WHEEL_PHOTOS = [  # the colour photographs among skimage/data (others are drawings, gray, or synthetic)
    'astronaut.png', 'chelsea.png', 'coffee.png', 'ihc.png', 'motorcycle_left.png', 'motorcycle_right.png',
    'rocket.jpg', 'retina.jpg', 'hubble_deep_field.jpg',
]
DEB_PACKAGE, DEB_VERSION = 'lomiri-wallpapers-16.04', '20.04.0-2'
DEB_DIR = './usr/share/backgrounds/'
DEB_PHOTOS = [  # the plain camera photographs in the package (left out: Peter Nerlich's three, which may be
    # composited or rendered, and umang, an abstract rendering); licences in the package's copyright file
    'Bridge_by_Sander_Klootwijk.jpg', 'Dragonfly_by_Bolly.jpg', 'Picture_0B_by_freespace.jpg',
    'Picture_1A_by_freespace.jpg', 'Wine_by_Jakkub_Mede.jpg', 'aitzgorri_by_Aitzol_Berasategi.jpg',
    'friends_by_Aitzol_Berasategi.jpg', 'life_by_Aitzol_Berasategi.jpg', 'picosdeeuropa_by_Aitzol_Berasategi.jpg',
    'seeding_by_Clements_Engelhardt.jpg', 'sunset_by_Aitzol_Berasategi.jpg',
]
SOURCES = {  # cover source of each photograph, by its file type in its package
    'never-compressed (PNG)': lambda name: name.endswith('.png'),
    'decoded from JPEG': lambda name: name.endswith('.jpg'),
}
CROP = 256
MAX_CROPS_PER_PHOTO = 16
RATES = [0.05, 0.1, 0.2, 0.4]
TOOLS = ['StegoCluster + passphrase', 'StegoCluster, no passphrase', 'stepic (LSB replacement)', 'sequential LSB replacement']
SEALED_OVERHEAD = 54   # docs/stego-format.md section 8
PUBLIC_OVERHEAD = 19
FILE_NAME_BYTES = 2    # file payload named "p": name length byte + name


def wheel_path():
    os.makedirs(CACHE, exist_ok=True)
    found = [f for f in os.listdir(CACHE) if f.startswith('scikit_image-0.24.0') and f.endswith('.whl')]
    if not found:
        subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
                        '--python-version', '3.11', '--platform', 'manylinux2014_x86_64', WHEEL_SPEC, '-d', CACHE],
                       check=True, stdout=subprocess.DEVNULL)
        found = [f for f in os.listdir(CACHE) if f.startswith('scikit_image-0.24.0') and f.endswith('.whl')]
    return os.path.join(CACHE, found[0])


def deb_path():
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f'{DEB_PACKAGE}_{DEB_VERSION}_all.deb')
    if not os.path.exists(path):
        subprocess.run(['apt-get', 'download', f'{DEB_PACKAGE}={DEB_VERSION}'], cwd=CACHE, check=True,
                       stdout=subprocess.DEVNULL)
    return path


def wheel_photos():
    with zipfile.ZipFile(wheel_path()) as wheel:
        for name in WHEEL_PHOTOS:
            yield name, wheel.read('skimage/data/' + name)


def deb_photos():
    data = subprocess.run(['dpkg-deb', '--fsys-tarfile', deb_path()], check=True, stdout=subprocess.PIPE).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for name in DEB_PHOTOS:
            yield name, tar.extractfile(DEB_DIR + name).read()


def crops(image, size, max_per_photo):
    """The non-overlapping size x size crops of a photograph that are neither flat nor clipped, in raster
    order, at most max_per_photo of them, evenly spaced."""
    h, w, _ = image.shape
    kept = []
    for y in range(0, h - size + 1, size):
        for x in range(0, w - size + 1, size):
            crop = image[y:y + size, x:x + size]
            clipped = np.mean((crop == 0) | (crop == 255))
            if crop.std() < 12 or clipped > 0.05:
                continue
            kept.append((x, y, crop))
    if len(kept) > max_per_photo:
        kept = [kept[i * len(kept) // max_per_photo] for i in range(max_per_photo)]
    return kept


def covers(size=CROP, max_per_photo=MAX_CROPS_PER_PHOTO, limit=None):
    """(name@x,y, crop) for every cover; with a limit (the quick run), that many from the wheel's photographs."""
    out = []
    for name, data in (wheel_photos() if limit is not None else itertools.chain(wheel_photos(), deb_photos())):
        image = np.array(Image.open(io.BytesIO(data)).convert('RGB'))
        out += [(f'{name}@{x},{y}', np.ascontiguousarray(crop)) for x, y, crop in crops(image, size, max_per_photo)]
    if limit is not None:
        step = max(1, len(out) // limit)
        out = out[::step][:limit]
    return out


def sequential_lsb(cover, bits, rng):
    flat = cover.reshape(-1).copy()
    flat[:bits] = (flat[:bits] & 0xFE) | rng.integers(0, 2, bits, dtype=np.uint8)
    return flat.reshape(cover.shape)


def stepic_embed(cover, bits, rng):
    import stepic
    image = Image.fromarray(cover)
    stepic.encode_inplace(image, rng.integers(0, 256, bits // 9, dtype=np.uint8).tobytes())  # 9 samples per byte
    return np.array(image)


def stegocluster_embed(work, cover_files, rate_bits, passphrase):
    jobs, outputs = [], []
    for i, (path, bits) in enumerate(zip(cover_files, rate_bits)):
        overhead = SEALED_OVERHEAD if passphrase else PUBLIC_OVERHEAD
        out = os.path.join(work, f'sc-{"p" if passphrase else "n"}-{bits}-{i}.png')
        jobs.append({'input': path, 'output': out, 'dataBytes': bits // 8 - overhead - FILE_NAME_BYTES,
                     'passphrase': f'bench passphrase {i}' if passphrase else None})
        outputs.append(out)
    job_file = os.path.join(work, f'jobs-{len(os.listdir(work))}.json')
    with open(job_file, 'w') as f:
        json.dump(jobs, f)
    subprocess.run([os.environ.get('npm_node_execpath') or 'node', os.path.join(ROOT, 'dist', 'node', 'bench', 'steganalysis', 'embed-batch.js'), job_file],
                   check=True, stdout=subprocess.DEVNULL)
    return [np.array(Image.open(p).convert('RGB')) for p in outputs]


def score_all(pool, images):
    scores = list(pool.map(detectors.score, images, chunksize=8))
    return {name: [s[name] for s in scores] for name in detectors.DETECTORS}


def plot(out_dir, rate, curves):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    columns = 3
    rows = -(-len(detectors.DETECTORS) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 4.2 * rows), dpi=64, squeeze=False)
    for ax in axes.flat[len(detectors.DETECTORS):]:
        ax.set_visible(False)
    for ax, det in zip(axes.flat, detectors.DETECTORS):
        for tool in TOOLS:
            fpr, tpr, auc = curves[tool][det]
            ax.plot(fpr, tpr, label=f'{tool} ({auc:.2f})')
        ax.plot([0, 1], [0, 1], color='grey', linestyle=':', linewidth=1)
        ax.set_title(det, fontsize=10)
        ax.set_xlabel('false positive rate')
        ax.set_ylabel('true positive rate')
        ax.legend(fontsize=7, loc='lower right')
    fig.suptitle(f'ROC at {rate} bits per colour sample')
    fig.tight_layout(rect=(0, 0, 1, 0.98))  # room for the title above the first row's panel titles
    fig.savefig(os.path.join(out_dir, f'roc-{rate}.png'))
    plt.close(fig)


GOAL_RATE = 0.1       # issue 14: at this rate and below ...
GOAL_STEGOCLUSTER = 0.6   # ... every classic detector's AUC for StegoCluster at most this,
GOAL_STEPIC = 0.9         # ... while it is at least this for stepic


def goal_summary(results, rates):
    """Per rate <= GOAL_RATE and classic family: stepic's AUC under the family's best variant, and the
    highest AUC StegoCluster (either variant) gets under any variant of the family."""
    out = {}
    for rate in (r for r in rates if r <= GOAL_RATE):
        table = results['rates'][str(rate)]
        rows = {}
        for family, variants in detectors.CLASSIC_FAMILIES.items():
            best = max(variants, key=lambda d: table[TOOLS[2]][d])
            worst_sc = max(table[t][d] for t in TOOLS[:2] for d in variants)
            rows[family] = {'stepic best variant': best, 'stepic AUC': table[TOOLS[2]][best],
                            'StegoCluster max AUC': worst_sc,
                            'met': bool(table[TOOLS[2]][best] >= GOAL_STEPIC and worst_sc <= GOAL_STEGOCLUSTER)}
        rows['StegoCluster max AUC, every detector'] = max(table[t][d] for t in TOOLS[:2] for d in detectors.DETECTORS)
        out[str(rate)] = rows
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out')
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--json')
    parser.add_argument('--jobs', type=int, default=2, help='processes scoring images (default 2)')
    parser.add_argument('--crop', type=int, default=CROP, help=f'cover size in pixels (default {CROP})')
    parser.add_argument('--max-per-photo', type=int, default=MAX_CROPS_PER_PHOTO,
                        help=f'most crops taken from one photograph (default {MAX_CROPS_PER_PHOTO})')
    args = parser.parse_args()
    started = time.time()
    rng = np.random.default_rng(20261206)
    cover_list = covers(args.crop, args.max_per_photo, 6 if args.quick else None)
    rates = [0.4] if args.quick else RATES
    images = [img for _, img in cover_list]
    photo_of = [name.split('@')[0] for name, _ in cover_list]
    source_index = {src: np.array([is_src(p) for p in photo_of]) for src, is_src in SOURCES.items()}
    samples = args.crop * args.crop * 3
    results = {'covers': len(images), 'crop': args.crop, 'max_crops_per_photo': args.max_per_photo, 'rates': {},
               'covers_by_photo': {p: photo_of.count(p) for p in dict.fromkeys(photo_of)},
               'covers_by_source': {src: int(idx.sum()) for src, idx in source_index.items()}, 'by_source': {}}
    with tempfile.TemporaryDirectory(prefix='steganalysis-') as work, \
            concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        cover_files = []
        for i, img in enumerate(images):
            path = os.path.join(work, f'cover-{i}.png')
            Image.fromarray(img).save(path)
            cover_files.append(path)
        cover_scores = score_all(pool, images)
        # What each detector says with nothing embedded, per cover source (the JPEG-derived covers' bias)
        results['cover_mean_by_source'] = {src: {d: round(float(np.mean(np.asarray(cover_scores[d])[idx])), 4) for d in detectors.DETECTORS}
                                           for src, idx in source_index.items() if idx.any()}
        for rate in rates:
            bits = int(rate * samples)
            stegos = {
                TOOLS[0]: stegocluster_embed(work, cover_files, [bits] * len(images), True),
                TOOLS[1]: stegocluster_embed(work, cover_files, [bits] * len(images), False),
                TOOLS[2]: [stepic_embed(img, bits, rng) for img in images],
                TOOLS[3]: [sequential_lsb(img, bits, rng) for img in images],
            }
            curves, table = {}, {}
            by_source = {src: {} for src in SOURCES}
            for tool, stego_images in stegos.items():
                scores = score_all(pool, stego_images)
                curves[tool] = {d: detectors.roc(cover_scores[d], scores[d]) for d in detectors.DETECTORS}
                table[tool] = {d: round(curves[tool][d][2], 3) for d in detectors.DETECTORS}
                table[tool]['mean score shift'] = {d: round(float(np.mean(scores[d]) - np.mean(cover_scores[d])), 4) for d in detectors.DETECTORS}
                for src, idx in source_index.items():
                    if idx.any():
                        by_source[src][tool] = {d: round(detectors.roc(np.asarray(cover_scores[d])[idx], np.asarray(scores[d])[idx])[2], 3)
                                                for d in detectors.DETECTORS}
            results['rates'][str(rate)] = table
            results['by_source'][str(rate)] = by_source
            if args.out:
                os.makedirs(args.out, exist_ok=True)
                plot(args.out, rate, curves)
    results['goal'] = goal_summary(results, rates)
    results['seconds'] = round(time.time() - started, 1)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    if args.quick:
        print(json.dumps(results))
        return
    print(f'# bench:steganalysis: {len(images)} covers ({args.crop}x{args.crop} RGB crops (at most {args.max_per_photo} per photograph) of {len(set(photo_of))} photographs in '
          f'{WHEEL_SPEC} and {DEB_PACKAGE} {DEB_VERSION}), '
          f'{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, {results["seconds"]} s\n')
    print('Covers per photograph: ' + ', '.join(f'{p} {n}' for p, n in results['covers_by_photo'].items()) + '\n')
    dets = list(detectors.DETECTORS)
    print('ROC AUC (0.5 = a coin toss; cover vs stego, fixed direction)\n')
    print('| bpc | tool | ' + ' | '.join(dets) + ' |')
    print('|---|---|' + '---|' * len(dets))
    for rate in rates:
        for tool in TOOLS:
            row = results['rates'][str(rate)][tool]
            print(f'| {rate} | {tool} | ' + ' | '.join(f'{row[d]:.3f}' for d in dets) + ' |')
    print(f'\nGoal (at <= {GOAL_RATE} bpc: StegoCluster <= {GOAL_STEGOCLUSTER} under every variant, stepic >= {GOAL_STEPIC} '
          'under the family\'s best variant)\n')
    print('| bpc | family | stepic, best variant | StegoCluster, highest of all variants | met |')
    print('|---|---|---|---|---|')
    for rate, rows in results['goal'].items():
        for family in detectors.CLASSIC_FAMILIES:
            g = rows[family]
            print(f'| {rate} | {family} | {g["stepic AUC"]:.3f} ({g["stepic best variant"]}) | {g["StegoCluster max AUC"]:.3f} | '
                  f'{"yes" if g["met"] else "no"} |')
    print('\nThe same, each cover source apart (' + ', '.join(f'{src}: {n} covers' for src, n in results['covers_by_source'].items()) + ')\n')
    print('| bpc | covers | tool | ' + ' | '.join(dets) + ' |')
    print('|---|---|---|' + '---|' * len(dets))
    for rate in rates:
        for src in SOURCES:
            for tool in TOOLS:
                row = results['by_source'][str(rate)][src].get(tool)
                if row:
                    print(f'| {rate} | {src} | {tool} | ' + ' | '.join(f'{row[d]:.3f}' for d in dets) + ' |')


if __name__ == '__main__':
    main()
