"""Classic steganalysis detectors on 8-bit colour images (H x W x C uint8 arrays).

Each detector returns a score in which larger means "more likely stego", so ROC AUC can be computed with a
fixed direction for every tool (no per-tool flipping):

- chi_square: Westfeld & Pfitzmann (1999), "Attacks on steganographic systems". Pairs of values (2k, 2k+1)
  are equalised by LSB replacement; the score is the largest p-value of the pairs-of-values chi-square test
  over growing prefixes of the image in raster order (the attack as published scans from the start,
  which is where sequential embedders write), per colour channel.
- rs: Fridrich, Goljan & Du (2001), "Reliable detection of LSB steganography in color and grayscale
  images". Regular/singular groups (4 pixels of a row or of a column) under the masks [0 1 1 0] and its negative, on the image and on the
  image with all LSBs flipped; the score is the estimated embedding rate (mean over channels).
- spa: Dumitrescu, Wu & Wang (2003), "Detection of LSB steganography via sample pair analysis"; score is
  the estimated embedding rate from horizontally and vertically adjacent pairs (mean over channels).
- ws: weighted stego-image analysis, Fridrich & Goljan (2004), "On estimation of secret message length in
  LSB steganography in spatial domain", with the improvements of Ker & Boehme (2008), "Revisiting weighted
  stego-image steganalysis": each sample is predicted from its 8 neighbours with the kernel
  [-1/4 1/2 -1/4; 1/2 0 1/2; -1/4 1/2 -1/4], weighted by 1/(5 + variance of its 4 neighbours), and the
  rate estimate is 2 * sum w (s - s_flipped)(s - prediction) / sum w (interior samples, all channels).
  Their bias-correction term is not applied. In this bench the most sensitive of the whole-image
  LSB-replacement estimators at low rates (docs/steganalysis.md).
- ws_sequential: the same per-sample WS terms, summed over growing prefixes of the image in raster order
  (1/32 ... all of it) instead of the whole image, as the Westfeld-Pfitzmann attack scans prefixes; the
  score is the largest prefix estimate times sqrt(prefix fraction), i.e. in units of its own noise (a
  prefix estimate's spread grows as 1/sqrt(its size)). Aimed at tools that write from the top-left
  pixel: payload at rate r fills the first r of the samples, where the prefix estimate is about 1 instead
  of r. Using WS residuals to locate payload is Ker (2008), "Locating steganographic payload via WS
  residuals". Against an embedder that scatters its changes over the whole image it has nothing to find.
- hcf_com: Ker (2005), "Steganalysis of LSB matching in grayscale images": the centre of mass of the
  histogram characteristic function of the adjacency (pairs) histogram, calibrated by the same statistic
  of the image downsampled 2x2. +-1 embedding lowers the full image's centre of mass more than the
  downsampled one's; the score is 1 - ratio (mean over channels).
"""

import numpy as np
from scipy.stats import chi2


# ---------- Westfeld-Pfitzmann chi-square ----------

def _pairs_p_value(samples):
    hist = np.bincount(samples, minlength=256).astype(np.float64)
    even, odd = hist[0::2], hist[1::2]
    expected = (even + odd) / 2.0
    keep = expected > 4  # the usual rule: categories with too few samples are merged away
    if keep.sum() < 2:
        return 0.0
    stat = np.sum((even[keep] - expected[keep]) ** 2 / expected[keep])
    return float(chi2.sf(stat, keep.sum() - 1))


def chi_square(image, fractions=(0.025, 0.05, 0.1, 0.2, 0.4, 1.0)):
    # Per channel, in raster order (the order sequential tools write in): a tool that spends some samples
    # on non-random bits (stepic's continuation flag in every ninth sample) equalises the other channels.
    pixels = image.reshape(-1, image.shape[2])
    n = len(pixels)
    return max(_pairs_p_value(pixels[: max(64, int(n * f)), c]) for f in fractions for c in range(image.shape[2]))


# ---------- RS analysis ----------

def _flip_pos(x):  # F1: 0<->1, 2<->3, ...
    return x ^ 1


def _flip_neg(x):  # F-1: -1<->0, 1<->2, ...: F-1(x) = F1(x + 1) - 1
    return ((x + 1) ^ 1) - 1


def _rs_counts(channel):
    """Fractions of regular and singular groups for masks M=[0,1,1,0] and -M on groups of 4 pixels in rows and in columns."""
    h, w = channel.shape
    rows = channel[:, : w - w % 4].reshape(-1, 4)
    cols = np.ascontiguousarray(channel[: h - h % 4, :].T).reshape(-1, 4)
    g = np.concatenate([rows, cols]).astype(np.int32)

    def smooth(groups):
        return np.abs(np.diff(groups, axis=1)).sum(axis=1)

    f0 = smooth(g)
    mask = np.array([False, True, True, False])
    pos = g.copy()
    pos[:, mask] = _flip_pos(pos[:, mask])
    neg = g.copy()
    neg[:, mask] = _flip_neg(neg[:, mask])
    fp, fn = smooth(pos), smooth(neg)
    n = float(len(g))
    return (fp > f0).sum() / n, (fp < f0).sum() / n, (fn > f0).sum() / n, (fn < f0).sum() / n


def _rs_channel(channel):
    r_m, s_m, r_nm, s_nm = _rs_counts(channel)
    r_m1, s_m1, r_nm1, s_nm1 = _rs_counts(channel ^ 1)
    d0, d1 = r_m - s_m, r_m1 - s_m1
    dn0, dn1 = r_nm - s_nm, r_nm1 - s_nm1
    a = 2 * (d1 + d0)
    b = dn0 - dn1 - d1 - 3 * d0
    c = d0 - dn0
    if abs(a) < 1e-12:
        if abs(b) < 1e-12:
            return 0.0
        z = -c / b
    else:
        disc = b * b - 4 * a * c
        if disc < 0:
            return 0.0
        roots = ((-b + np.sqrt(disc)) / (2 * a), (-b - np.sqrt(disc)) / (2 * a))
        z = min(roots, key=abs)
    if abs(z - 0.5) < 1e-12:
        return 1.0
    return float(z / (z - 0.5))


def rs(image):
    return float(np.mean([_rs_channel(image[:, :, c]) for c in range(image.shape[2])]))


# ---------- sample pair analysis ----------

def _spa_counts(u, v):
    u = u.astype(np.int32).reshape(-1)
    v = v.astype(np.int32).reshape(-1)
    v_even = (v & 1) == 0
    x = np.sum((v_even & (u < v)) | (~v_even & (u > v)))
    y = np.sum((v_even & (u > v)) | (~v_even & (u < v)))
    z = np.sum(u == v)
    w = np.sum((u >> 1) == (v >> 1)) - z  # pairs differing in the LSB only (a subset of Y)
    return float(x), float(y), float(z), float(w), float(len(u))


def _spa_channel(channel):
    totals = np.zeros(5)
    totals += _spa_counts(channel[:, :-1], channel[:, 1:])
    totals += _spa_counts(channel[:-1, :], channel[1:, :])
    x, y, z, w, p = totals
    a = (w + z) / 2.0
    b = 2 * x - p
    c = y - x
    if a < 1e-12:
        return 0.0
    disc = b * b - 4 * a * c
    if disc < 0:
        return 0.0
    return float(min((-b + np.sqrt(disc)) / (2 * a), (-b - np.sqrt(disc)) / (2 * a)))


def spa(image):
    return float(np.mean([_spa_channel(image[:, :, c]) for c in range(image.shape[2])]))


# ---------- weighted stego-image (WS) ----------

_WS_KERNEL = np.array([[-0.25, 0.5, -0.25], [0.5, 0.0, 0.5], [-0.25, 0.5, -0.25]])


def _ws_terms(image):
    """Per-sample WS terms w (s - s_flipped)(s - prediction) and weights w, interior samples in raster order (H, W, C)."""
    s = image.astype(np.float64)
    h, w = s.shape[:2]
    prediction = np.zeros((h - 2, w - 2, s.shape[2]))
    for dy in range(3):
        for dx in range(3):
            if _WS_KERNEL[dy, dx]:
                prediction += _WS_KERNEL[dy, dx] * s[dy:dy + h - 2, dx:dx + w - 2]
    centre = s[1:-1, 1:-1]
    neighbours = np.stack([s[:-2, 1:-1], s[2:, 1:-1], s[1:-1, :-2], s[1:-1, 2:]])
    weight = 1.0 / (5.0 + neighbours.var(axis=0))
    s_minus_flipped = 2.0 * (image[1:-1, 1:-1] & 1) - 1.0  # s - s_flipped: -1 for even samples, +1 for odd
    return (weight * s_minus_flipped * (centre - prediction)).reshape(-1), weight.reshape(-1)


def ws(image):
    terms, weights = _ws_terms(image)
    return float(2.0 * terms.sum() / weights.sum())


WS_PREFIXES = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)


def ws_sequential(image):
    terms, weights = _ws_terms(image)
    t, w = np.cumsum(terms), np.cumsum(weights)
    ends = [max(1, int(len(terms) * f)) - 1 for f in WS_PREFIXES]
    return float(max(2.0 * t[e] / w[e] * np.sqrt(f) for e, f in zip(ends, WS_PREFIXES)))


# ---------- Ker's calibrated adjacency HCF centre of mass ----------

def _adjacency_com(channel):
    u = channel[:, :-1].reshape(-1).astype(np.int64)
    v = channel[:, 1:].reshape(-1).astype(np.int64)
    hist = np.bincount(u * 256 + v, minlength=256 * 256).reshape(256, 256).astype(np.float64)
    hcf = np.abs(np.fft.fft2(hist))[:129, :129]
    k = np.arange(129)
    weights = k[:, None] + k[None, :]
    hcf[0, 0] = 0.0
    total = hcf.sum()
    return float((weights * hcf).sum() / total) if total > 0 else 0.0


def _downsample(channel):
    h, w = channel.shape
    c = channel[: h - h % 2, : w - w % 2].astype(np.int32)
    return ((c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2]) // 4).astype(np.uint8)


def hcf_com(image):
    ratios = []
    for c in range(image.shape[2]):
        channel = image[:, :, c]
        down = _adjacency_com(_downsample(channel))
        full = _adjacency_com(channel)
        ratios.append(full / down if down > 0 else 1.0)
    return float(1.0 - np.mean(ratios))


DETECTORS = {
    'chi-square (Westfeld-Pfitzmann)': chi_square,
    'RS (Fridrich)': rs,
    'SPA (Dumitrescu)': spa,
    'WS (Fridrich-Goljan, Ker-Boehme)': ws,
    'WS, prefix scan': ws_sequential,
    'HCF-COM +-1 (Ker)': hcf_com,
}


def roc(cover_scores, stego_scores):
    """(false positive rates, true positive rates, AUC) with 'larger score = stego'; ties count half."""
    cover = np.asarray(cover_scores, dtype=np.float64)
    stego = np.asarray(stego_scores, dtype=np.float64)
    thresholds = np.unique(np.concatenate([cover, stego]))[::-1]
    fpr = [0.0] + [float(np.mean(cover >= t)) for t in thresholds]
    tpr = [0.0] + [float(np.mean(stego >= t)) for t in thresholds]
    greater = (stego[:, None] > cover[None, :]).sum()
    ties = (stego[:, None] == cover[None, :]).sum()
    auc = (greater + 0.5 * ties) / (len(cover) * len(stego))
    return fpr, tpr, float(auc)
