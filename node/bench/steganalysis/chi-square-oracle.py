"""How far can a pairs-of-values (chi-square) test see stepic on these covers if it is told where the payload is?

A reference for the chi-square rows of bench:steganalysis, not a detector: for every cover and for stepic at
0.05 and 0.1 bpc, the Westfeld-Pfitzmann p-value and the pairs z-score (detectors.py) are computed on exactly
the rows stepic wrote in full, never on a row it did not reach. Channels: the largest over the three (as the
bench's detectors do), and the red and green samples pooled (the channels that stepic's continuation flag, an
even blue sample in every ninth, leaves alone). A scan that has to find the payload cannot do better than
the same test placed on it; if this stays under 0.9, so does every prefix form of the test.

Usage: chi-square-oracle.py [--seed N] [--crop PIXELS] [--max-per-photo N]   (payload bits from numpy's
generator with that seed, default 1, not the bench's seed; covers as in run.py)
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detectors  # noqa: E402
import run  # noqa: E402


def histogram(samples):
    return np.bincount(samples.reshape(-1), minlength=256).astype(np.float64)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--crop', type=int, default=run.CROP)
    parser.add_argument('--max-per-photo', type=int, default=run.MAX_CROPS_PER_PHOTO)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    named = run.covers(args.crop, args.max_per_photo)
    images = [img for _, img in named]
    jpeg = np.array([name.split('@')[0].endswith('.jpg') for name, _ in named])
    width = images[0].shape[1]
    tests = {'Westfeld-Pfitzmann p': detectors._pairs_p_value, 'pairs z': detectors._pairs_z}
    print(f'{len(images)} covers of {args.crop}x{args.crop}; stepic payload bits from seed {args.seed}\n')
    print('| bpc | rows written in full | test | channels | AUC, all covers | never-compressed | decoded from JPEG |')
    print('|---|---|---|---|---|---|---|')
    for rate in (0.05, 0.1):
        bits = int(rate * images[0].size)
        rows = (bits // 9) * 3 // width  # stepic: 3 pixels per byte
        stegos = [run.stepic_embed(img, bits, rng) for img in images]
        for test_name, test in tests.items():
            for channels_name, pick in (('largest of R, G, B', None), ('R and G pooled', [0, 1])):
                def score(img):
                    region = img[:rows]
                    if pick is None:
                        return max(test(histogram(region[:, :, c])) for c in range(region.shape[2]))
                    return test(histogram(region[:, :, pick]))
                cover_scores = np.array([score(img) for img in images])
                stego_scores = np.array([score(img) for img in stegos])
                aucs = [detectors.roc(cover_scores[idx], stego_scores[idx])[2]
                        for idx in (np.ones(len(images), bool), ~jpeg, jpeg)]
                print(f'| {rate} | {rows} | {test_name} | {channels_name} | ' + ' | '.join(f'{a:.3f}' for a in aucs) + ' |')


if __name__ == '__main__':
    main()
