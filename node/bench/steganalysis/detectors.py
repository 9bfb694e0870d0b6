"""Classic steganalysis detectors on 8-bit colour images (H x W x C uint8 arrays).

Each detector returns a score in which larger means "more likely stego", so ROC AUC can be computed with a
fixed direction for every tool (no per-tool flipping). Every LSB-replacement family has a whole-image form
and a prefix form: sequential tools (stepic, the baseline) write from the top-left pixel in raster order, so
their payload fills a prefix of the image, which the prefix forms scan for. The scan is the same for every
image (cover or stego, any tool) and knows nothing of a payload's length or place.

- chi-square: Westfeld & Pfitzmann (1999), "Attacks on steganographic systems" (Information Hiding 1999,
  LNCS 1768). Pairs of values (2k, 2k+1) are equalised by LSB replacement. The whole-image form is their
  p-value on each whole colour channel; their attack on sequential embedders is the prefix form: the p-value
  as a function of the sample size, samples taken from the start of the image in scan order (it stays near
  1 while the sample lies inside the embedded part). Beside it, the same evenness as a z-score that keeps one
  null distribution at every sample size, the same z-score on local 4x4 histograms, and the pairs of values
  as Pearson's test of independence between a sample's LSB and its other bits, the even share estimated
  rather than fixed at 1/2 and the three channels' tables pooled (chi_square_scores).
- RS: Fridrich, Goljan & Du (2001), "Reliable detection of LSB steganography in color and grayscale
  images". Regular/singular groups (4 pixels of a row or of a column) under the masks [0 1 1 0] and its
  negative, on the image and on the image with all LSBs flipped; the score is the estimated embedding rate
  (mean over channels).
- SPA: Dumitrescu, Wu & Wang (2003), "Detection of LSB steganography via sample pair analysis": the
  estimated embedding rate from horizontally and vertically adjacent pairs (mean over channels).
- WS: weighted stego-image analysis, Fridrich & Goljan (2004), "On estimation of secret message length in
  LSB steganography in spatial domain", with the improvements of Ker & Boehme (2008), "Revisiting weighted
  stego-image steganalysis": each sample is predicted from its 8 neighbours with the kernel
  [-1/4 1/2 -1/4; 1/2 0 1/2; -1/4 1/2 -1/4], weighted by 1/(5 + variance of its 4 neighbours), and the
  rate estimate is 2 * sum w (s - s_flipped)(s - prediction) / sum w (interior samples, all channels).
  Their bias-correction term is not applied. Using WS residuals to locate payload is Ker (2008),
  "Locating steganographic payload via WS residuals".
- Prefix forms (one scan for all families, prefix_totals): each family's statistics are summed per image
  row, and its detector is evaluated on the first h/32, h/16, h/8, h/4, h/2 and h rows. The rate estimators
  (RS, SPA, WS) score the largest prefix estimate times sqrt(prefix fraction), i.e. in units of its own
  noise; chi-square scores the largest p-value (as published) or z-score over the prefixes. Payload at rate
  r from the top-left fills the first r of the image. Against an embedder that scatters its changes over
  the whole image they have nothing to find: every prefix holds changes in proportion to its size.
- HCF-COM: Ker (2005), "Steganalysis of LSB matching in grayscale images": the centre of mass of the
  histogram characteristic function of the adjacency (pairs) histogram, calibrated by the same statistic
  of the image downsampled 2x2. +-1 embedding lowers the full image's centre of mass more than the
  downsampled one's; the score is 1 - ratio (mean over channels). Not an LSB-replacement detector.
"""

import numpy as np
from scipy.stats import chi2


# ---------- one prefix scan for every family ----------

# Sequential tools (stepic, the baseline) write from the top-left pixel in raster order, so their payload
# fills the leading rows. Every family computes its sufficient statistics per image row, each counted on the
# last row it reads, so the first k rows' totals are a cumulative sum that reads nothing below row k; the
# family's estimator is then evaluated on the first h/32, h/16, ... h rows (fixed geometric fractions,
# chosen before any result). The last prefix is the whole image: the whole-image form of every detector is
# the scan's last step. No scan knows a payload's length or place; every image, cover or stego, is scanned
# the same way.
PREFIX_FRACTIONS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)


def prefix_rows(h, multiple=1):
    """The prefix lengths in rows, each a multiple of `multiple` (the family's row granularity)."""
    last = h - h % multiple
    return sorted({max(multiple, int(last * f) // multiple * multiple) for f in PREFIX_FRACTIONS})


def prefix_totals(per_row, rows):
    """Totals over the first k rows for every k in rows: per_row has the row index on its last axis."""
    cumulative = np.cumsum(per_row, axis=-1)
    return [cumulative[..., k - 1] for k in rows]


def prefix_max_in_noise_units(estimates, rows, h):
    """A rate estimator's scan score: the largest prefix estimate times sqrt(prefix fraction), i.e. in units
    of its own noise (an estimate's spread grows as 1/sqrt(its size)). Payload at rate r from the top-left
    fills the first r of the image, where the estimate is about 1 instead of r; an embedder that scatters its
    changes over the whole image puts changes in every prefix in proportion to its size."""
    return float(max(e * np.sqrt(k / h) for e, k in zip(estimates, rows)))


# ---------- Westfeld-Pfitzmann chi-square ----------

def _histograms_by_row(channel):
    """(256, h) array: the histogram of every row of one channel."""
    h = channel.shape[0]
    key = channel.astype(np.int64) + 256 * np.arange(h)[:, None]
    return np.bincount(key.reshape(-1), minlength=256 * h).reshape(h, 256).T.astype(np.float64)


def _pairs_p_value(hist):
    """Westfeld-Pfitzmann's p-value of one histogram, as published: chi^2 = sum over pairs of values (2k, 2k+1)
    of (n_2k - n*)^2 / n* with n* = (n_2k + n_2k+1) / 2, over the pairs with n* > 4, (those pairs - 1) degrees
    of freedom; p near 1 when the pairs are as even as LSB replacement makes them."""
    even, odd = hist[0::2], hist[1::2]
    expected = (even + odd) / 2.0
    keep = expected > 4  # the usual rule: categories with too few samples are merged away
    if keep.sum() < 2:
        return 0.0
    stat = np.sum((even[keep] - expected[keep]) ** 2 / expected[keep])
    return float(chi2.sf(stat, keep.sum() - 1))


def _pairs_z(hist):
    """The pairs-of-values evenness of one histogram in units of its noise: under fully random LSBs every pair
    holding n >= 2 samples has E[(n_2k - n_2k+1)^2 / n] = 1 and variance 2 - 2/n exactly, whatever the cover,
    so -(sum of (stat - 1)) / sqrt(sum of variances) is ~N(0, 1) where the LSBs are random at any sample size,
    and negative where they are a cover's uneven ones."""
    even, odd = hist[0::2], hist[1::2]
    n = even + odd
    used = n >= 2
    if not used.any():
        return 0.0
    excess = np.sum((even[used] - odd[used]) ** 2 / n[used] - 1.0)
    return float(-excess / np.sqrt(np.sum(2.0 - 2.0 / n[used])))


def _lsb_independence_excess(hist):
    """Pearson's test of independence between a sample's LSB and its other seven bits, on one histogram: the
    2 x (pairs) table of even and odd counts of every pair of values (2k, 2k+1). Westfeld-Pfitzmann's expected
    count n* = (n_2k + n_2k+1) / 2 assumes the embedded bits are balanced; here the even share q is estimated
    from the table, so bits of any balance (an unencrypted message, a tool's framing bits) are covered too:
    LSB replacement with independent bits of any bias makes the LSB independent of the value's pair, a cover's
    pairs are uneven by different amounts. Returns (excess, variance): the sum over the pairs holding n >= 2
    samples of (n_2k - q n)^2 / (n q (1 - q)) - 1, plus the one degree of freedom spent on q, and its variance
    2 + (1 - 6 q (1 - q)) / (n q (1 - q)) per pair under independence (the binomial's exact fourth moment; at
    q = 1/2 it is _pairs_z's 2 - 2/n). Works on the last axis of stacked histograms (256, ...) too."""
    even, odd = hist[0::2], hist[1::2]
    n = even + odd
    used = n >= 2
    safe_n = np.where(used, n, 1.0)
    q = np.where(used, even, 0).sum(axis=0) / np.maximum(np.where(used, n, 0).sum(axis=0), 1.0)
    q = np.clip(q, 1e-3, 1 - 1e-3)  # a channel whose LSBs are all alike: keep the terms finite
    pq = q * (1 - q)
    term = (even - q * n) ** 2 / (safe_n * pq) - 1.0
    variance = 2.0 + (1.0 - 6.0 * pq) / (safe_n * pq)
    return np.where(used, term, 0).sum(axis=0) + 1.0, np.where(used, variance, 0).sum(axis=0)


def _local_pairs_excess_by_block_row(channel, block=4):
    """The pairs-of-values statistic on the histogram of every block x block tile of one channel: per image
    row (the last row of its tiles), the sum over (tile, pair) of (n_2k - n_2k+1)^2 / n - 1 and its variance
    2 - 2/n under fully random LSBs, over the pairs with n = n_2k + n_2k+1 >= 2 samples: a (2, h) array."""
    h, w = channel.shape
    tiles = channel[: h - h % block, : w - w % block].reshape(h // block, block, w // block, block).transpose(0, 2, 1, 3)
    tiles = tiles.reshape(h // block, -1).astype(np.int64)           # (tile rows, tiles per row * block^2)
    per_row = (w // block) * 128
    tile = np.repeat(np.arange(w // block), block * block)[None, :]
    key = (np.arange(h // block)[:, None] * per_row + tile * 128 + (tiles >> 1)).reshape(-1)
    order = np.argsort(key, kind='stable')
    key, odd_bit = key[order], (tiles.reshape(-1) & 1)[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])      # one run per (tile, pair) present
    n = np.diff(np.r_[starts, len(key)]).astype(np.float64)
    odd = np.add.reduceat(odd_bit, starts).astype(np.float64)
    used = n >= 2
    last_row = (key[starts[used]] // per_row) * block + block - 1
    excess = np.bincount(last_row, weights=(n[used] - 2 * odd[used]) ** 2 / n[used] - 1.0, minlength=h)
    variance = np.bincount(last_row, weights=2.0 - 2.0 / n[used], minlength=h)
    return np.array([excess, variance])


LOCAL_BLOCK = 4


def chi_square_scores(image):
    """Westfeld-Pfitzmann's pairs-of-values test on each colour channel, over growing prefixes of rows.

    - whole image: the published p-value of each whole channel, the largest over channels;
    - prefix scan, as published: the p-value as a function of the sample size, samples taken from the start
      in raster order (the attack on sequential embedders): the largest p-value over the prefixes;
    - prefix scan, z: the same evenness in units of its own noise (_pairs_z) at every prefix, the largest;
      the published statistic compares the even counts only and its p-value is not on one scale across
      sample sizes (near 1 under random LSBs, ever closer to 1 as the sample grows), so its largest value over
      a scan leans to the largest prefixes; the z-score has the same null distribution at every size;
    - local 4x4 histograms: the same z-score on the histograms of 4x4 tiles, summed over the tiles of each
      prefix (a cover's local histogram, a few neighbouring levels, is uneven within pairs far more often
      than a whole channel's);
    - LSB independence, channels pooled: _lsb_independence_excess on each channel's prefix histograms, the
      three channels' excesses and variances summed (a stratified test, each channel with its own even
      share), in units of its noise; the largest over the prefixes.

    The first four per channel, the largest over channels: a tool that spends some samples of one channel on
    non-random bits (stepic's continuation flag, an even blue sample in every ninth) equalises the other
    channels, and W&P's expected counts (even share 1/2) see that channel as uneven. The independence form
    estimates each channel's even share, so such bits do not count against evenness, and pools the channels."""
    h = image.shape[0]
    rows = prefix_rows(h)
    local_rows = prefix_rows(h, LOCAL_BLOCK)
    whole, scan_p, scan_z, local = [], [], [], []
    independence_excess, independence_variance = np.zeros(len(rows)), np.zeros(len(rows))
    for c in range(image.shape[2]):
        channel = image[:, :, c]
        hists = prefix_totals(_histograms_by_row(channel), rows)
        excess, variance = _lsb_independence_excess(np.stack(hists, axis=-1))
        independence_excess += excess
        independence_variance += variance
        p = [_pairs_p_value(hist) for hist in hists]
        whole.append(p[-1])
        scan_p.extend(p)
        scan_z.extend(_pairs_z(hist) for hist in hists)
        for excess, variance in prefix_totals(_local_pairs_excess_by_block_row(channel, LOCAL_BLOCK), local_rows):
            if variance > 0:
                local.append(-excess / np.sqrt(variance))
    return {'chi-square (Westfeld-Pfitzmann)': max(whole),
            'chi-square (Westfeld-Pfitzmann), prefix scan': max(scan_p),
            'chi-square, pairs z, prefix scan': max(scan_z),
            'chi-square, local 4x4 histograms, prefix scan': float(max(local)) if local else 0.0,
            'chi-square, LSB independence, channels pooled, prefix scan':
                float(np.max(-independence_excess / np.sqrt(np.maximum(independence_variance, 1e-12))))}


# ---------- RS analysis ----------

def _flip_pos(x):  # F1: 0<->1, 2<->3, ...
    return x ^ 1


def _flip_neg(x):  # F-1: -1<->0, 1<->2, ...: F-1(x) = F1(x + 1) - 1
    return ((x + 1) ^ 1) - 1


_RS_MASK = np.array([False, True, True, False])


def _rs_counts_by_row(channel):
    """Counts of regular and singular groups for masks M=[0,1,1,0] and -M, groups of 4 pixels in rows and in
    columns, per image row the group ends in: (4 counts, group count) arrays of length h, so that a prefix of
    k rows (k a multiple of 4) is a cumulative sum."""
    h, w = channel.shape
    rows = channel[:, : w - w % 4].reshape(h, -1, 4)                                   # (h, w/4, 4)
    cols = channel[: h - h % 4, :].reshape(h // 4, 4, w).transpose(0, 2, 1)             # (h/4, w, 4)
    g = np.concatenate([rows.reshape(-1, 4), cols.reshape(-1, 4)]).astype(np.int32)
    last_row = np.concatenate([np.repeat(np.arange(h), rows.shape[1]), np.repeat(np.arange(h // 4) * 4 + 3, w)])

    def smooth(groups):
        return np.abs(np.diff(groups, axis=1)).sum(axis=1)

    f0 = smooth(g)
    pos = g.copy()
    pos[:, _RS_MASK] = _flip_pos(pos[:, _RS_MASK])
    neg = g.copy()
    neg[:, _RS_MASK] = _flip_neg(neg[:, _RS_MASK])
    fp, fn = smooth(pos), smooth(neg)
    counts = [np.bincount(last_row, weights=flag, minlength=h) for flag in (fp > f0, fp < f0, fn > f0, fn < f0)]
    return np.array(counts), np.bincount(last_row, minlength=h).astype(np.float64)


def _rs_estimate(fractions, fractions_flipped):
    r_m, s_m, r_nm, s_nm = fractions
    r_m1, s_m1, r_nm1, s_nm1 = fractions_flipped
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
        disc = max(0.0, b * b - 4 * a * c)  # no real root: the roots' real part (see _spa_estimate)
        roots = ((-b + np.sqrt(disc)) / (2 * a), (-b - np.sqrt(disc)) / (2 * a))
        z = min(roots, key=abs)
    if abs(z - 0.5) < 1e-12:
        return 1.0
    return float(z / (z - 0.5))


def _rs_prefix_estimates(channel, rows):
    counts, groups = _rs_counts_by_row(channel)
    counts1, _ = _rs_counts_by_row(channel ^ 1)
    per_row = np.concatenate([counts, counts1, groups[None, :]])
    return [_rs_estimate(t[0:4] / t[8], t[4:8] / t[8]) for t in prefix_totals(per_row, rows)]


def rs_scores(image):
    """RS on the whole image, and its prefix scan (rows in multiples of 4, the column groups' height); rate
    estimates averaged over channels."""
    h = image.shape[0]
    rows = prefix_rows(h, 4)
    est = np.mean([_rs_prefix_estimates(image[:, :, c], rows) for c in range(image.shape[2])], axis=0)
    return {'RS (Fridrich)': float(est[-1]), 'RS, prefix scan': prefix_max_in_noise_units(est, rows, rows[-1])}


# ---------- sample pair analysis ----------

def _spa_counts_by_row(u, v):
    """X, Y, Z, W and pair counts of the sample pairs (u[i, j], v[i, j]), per row i: a (5, rows) array."""
    u = u.astype(np.int32)
    v = v.astype(np.int32)
    v_even = (v & 1) == 0
    x = (v_even & (u < v)) | (~v_even & (u > v))
    y = (v_even & (u > v)) | (~v_even & (u < v))
    z = u == v
    w = ((u >> 1) == (v >> 1)) & ~z  # pairs differing in the LSB only (a subset of Y)
    return np.array([flag.sum(axis=1) for flag in (x, y, z, w, np.ones_like(z))], dtype=np.float64)


def _spa_estimate(totals):
    x, y, z, w, p = totals
    a = (w + z) / 2.0
    b = 2 * x - p
    c = y - x
    if a < 1e-12:
        return 0.0
    # Near full embedding (a fully written prefix) the quadratic can lose its real roots by sampling noise;
    # their real part, -b / 2a, is then the estimate (the same rule in RS, for every image alike).
    disc = max(0.0, b * b - 4 * a * c)
    return float(min((-b + np.sqrt(disc)) / (2 * a), (-b - np.sqrt(disc)) / (2 * a)))


def _spa_prefix_estimates(channel, rows):
    # horizontal pairs belong to their row, vertical pairs (r, r+1) to row r+1: a prefix of k rows holds both kinds
    horizontal = _spa_counts_by_row(channel[:, :-1], channel[:, 1:])
    vertical = np.concatenate([np.zeros((5, 1)), _spa_counts_by_row(channel[:-1, :], channel[1:, :])], axis=1)
    return [_spa_estimate(totals) for totals in prefix_totals(horizontal + vertical, rows)]


def spa_scores(image):
    """SPA on the whole image, and its prefix scan; rate estimates averaged over channels."""
    h = image.shape[0]
    rows = prefix_rows(h)
    est = np.mean([_spa_prefix_estimates(image[:, :, c], rows) for c in range(image.shape[2])], axis=0)
    return {'SPA (Dumitrescu)': float(est[-1]), 'SPA, prefix scan': prefix_max_in_noise_units(est, rows, h)}


# ---------- weighted stego-image (WS) ----------

_WS_KERNEL = np.array([[-0.25, 0.5, -0.25], [0.5, 0.0, 0.5], [-0.25, 0.5, -0.25]])


def _ws_sums_by_row(image):
    """Per image row, the sums of the WS terms w (s - s_flipped)(s - prediction) and of the weights w over the
    interior samples of all channels: a (2, h) array; a sample's terms count on the last row its 3x3
    neighbourhood reads (the row below it)."""
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
    sums = np.zeros((2, h))
    sums[0, 2:] = (weight * s_minus_flipped * (centre - prediction)).sum(axis=(1, 2))
    sums[1, 2:] = weight.sum(axis=(1, 2))
    return sums


def ws_scores(image):
    """WS on the whole image (all channels pooled), and its prefix scan."""
    h = image.shape[0]
    rows = [k for k in prefix_rows(h) if k >= 3]  # a prefix needs one interior row
    est = [2.0 * t / w for t, w in prefix_totals(_ws_sums_by_row(image), rows)]
    return {'WS (Fridrich-Goljan, Ker-Boehme)': float(est[-1]), 'WS, prefix scan': prefix_max_in_noise_units(est, rows, h)}


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


def hcf_com_scores(image):
    return {'HCF-COM +-1 (Ker)': hcf_com(image)}


# Each family scores its whole-image detector and its prefix forms in one pass over the image.
FAMILIES = (chi_square_scores, rs_scores, spa_scores, ws_scores, hcf_com_scores)
DETECTORS = (
    'chi-square (Westfeld-Pfitzmann)', 'chi-square (Westfeld-Pfitzmann), prefix scan',
    'chi-square, pairs z, prefix scan', 'chi-square, local 4x4 histograms, prefix scan',
    'chi-square, LSB independence, channels pooled, prefix scan',
    'RS (Fridrich)', 'RS, prefix scan',
    'SPA (Dumitrescu)', 'SPA, prefix scan',
    'WS (Fridrich-Goljan, Ker-Boehme)', 'WS, prefix scan',
    'HCF-COM +-1 (Ker)',
)
# The classic LSB-replacement families the goal is judged on, each by its best variant (docs/steganalysis.md).
CLASSIC_FAMILIES = {
    'chi-square': DETECTORS[0:5], 'RS': DETECTORS[5:7], 'SPA': DETECTORS[7:9], 'WS': DETECTORS[9:11],
}


def score(image):
    """Every detector's score of one image: {detector name: score}."""
    out = {}
    for family in FAMILIES:
        out.update(family(image))
    return out


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
