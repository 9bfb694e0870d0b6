"""The development split on which the chi-square variant of bench:steganalysis was chosen (docs/steganalysis.md).

Covers: 256x256 crops of the same photographs as run.py, on the crop grid shifted by half a crop (128 pixels)
in both directions, the same flat/clipped filter and cap of 16 per photograph; a shifted crop overlaps a
quarter of up to four judged covers, and its first rows (where sequential tools write) lie in the middle of
judged covers, never in their first rows. Payload bits from numpy's generator with seed 7 (run.py: 20261206).
For stepic, the sequential baseline and StegoCluster with a passphrase at 0.05, 0.1 and 0.4 bpc, it prints
the AUC of every pairs-of-values variant compared on this split:
  - statistic: 'half' = Westfeld-Pfitzmann's expected counts n* = (n_2k + n_2k+1) / 2 (detectors._pairs_z);
    'independence' = the LSB-independence test (detectors._lsb_independence_excess), even share estimated;
  - channels: 'largest of R, G, B'; 'pooled' = the three channels' statistics summed; 'joint' = one
    histogram of all samples;
  - prefixes: 'common' = detectors.PREFIX_FRACTIONS; 'half-octave' = 8 * 2^(i/2) rows and the whole image.

Usage: chi-square-dev.py   (needs `npm run build` first, for StegoCluster's embedder)
"""

import io
import itertools
import os
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detectors  # noqa: E402
import run  # noqa: E402

OFFSET, SEED, RATES = 128, 7, (0.05, 0.1, 0.4)


def shifted_covers(size=run.CROP, max_per_photo=run.MAX_CROPS_PER_PHOTO):
    out = []
    for _, data in itertools.chain(run.wheel_photos(), run.deb_photos()):
        image = np.array(Image.open(io.BytesIO(data)).convert('RGB'))[OFFSET:, OFFSET:]
        out += [np.ascontiguousarray(crop) for _, _, crop in run.crops(image, size, max_per_photo)]
    return out


def half_excess(hist):
    even, odd = hist[0::2], hist[1::2]
    n = even + odd
    used = n >= 2
    safe = np.where(used, n, 1.0)
    return (np.where(used, (even - odd) ** 2 / safe - 1, 0).sum(axis=0),
            np.where(used, 2 - 2 / safe, 0).sum(axis=0))


def variants(image):
    h = image.shape[0]
    grids = {'common': detectors.prefix_rows(h),
             'half-octave': sorted({int(round(8 * 2 ** (i / 2))) for i in range(11)} | {h})}
    hists = np.cumsum(np.stack([detectors._histograms_by_row(image[:, :, c]) for c in range(3)]), axis=2)
    out = {}
    for (stat_name, stat), (grid_name, grid) in itertools.product(
            (('half', half_excess), ('independence', detectors._lsb_independence_excess)), grids.items()):
        cols = [k - 1 for k in grid]
        per_channel = [stat(hists[c][:, cols]) for c in range(3)]
        z = [-e / np.sqrt(np.maximum(v, 1e-12)) for e, v in per_channel]
        out[(stat_name, 'largest of R, G, B', grid_name)] = float(max(zc.max() for zc in z))
        pooled = -sum(e for e, _ in per_channel) / np.sqrt(sum(v for _, v in per_channel))
        out[(stat_name, 'pooled', grid_name)] = float(pooled.max())
        e, v = stat(hists.sum(axis=0)[:, cols])
        out[(stat_name, 'joint', grid_name)] = float((-e / np.sqrt(v)).max())
    return out


def main():
    images = shifted_covers()
    rng = np.random.default_rng(SEED)
    cover_scores = [variants(img) for img in images]
    names = list(cover_scores[0])
    aucs = {}
    with tempfile.TemporaryDirectory(prefix='chi-square-dev-') as work:
        files = []
        for i, img in enumerate(images):
            files.append(os.path.join(work, f'cover-{i}.png'))
            Image.fromarray(img).save(files[-1])
        for rate in RATES:
            bits = int(rate * images[0].size)
            stegos = {'stepic': [run.stepic_embed(img, bits, rng) for img in images],
                      'sequential': [run.sequential_lsb(img, bits, rng) for img in images],
                      'StegoCluster + passphrase': run.stegocluster_embed(work, files, [bits] * len(images), True)}
            for tool, stego_images in stegos.items():
                scores = [variants(img) for img in stego_images]
                aucs[(tool, rate)] = {n: detectors.roc([c[n] for c in cover_scores], [s[n] for s in scores])[2] for n in names}
    columns = list(aucs)
    print(f'{len(images)} covers (grid shifted by {OFFSET} pixels), payload seed {SEED}\n')
    print('| statistic | channels | prefixes | ' + ' | '.join(f'{t} {r}' for t, r in columns) + ' |')
    print('|---|---|---|' + '---|' * len(columns))
    for n in names:
        print('| ' + ' | '.join(n) + ' | ' + ' | '.join(f'{aucs[c][n]:.3f}' for c in columns) + ' |')


if __name__ == '__main__':
    main()
