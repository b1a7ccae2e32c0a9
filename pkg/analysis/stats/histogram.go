package stats

import (
	"cmp"
	"math"
	"slices"
)

// Bucket is one cumulative histogram bucket: Count observations ≤ UpperBound.
type Bucket struct{ UpperBound, Count float64 }

// cleanBuckets returns the buckets sorted, with unusable counts as 0 and
// counts made monotonic (as Prometheus does), or nil if the histogram has no
// +Inf bucket.
func cleanBuckets(b []Bucket) []Bucket {
	b = slices.Clone(b)
	slices.SortFunc(b, func(x, y Bucket) int { return cmp.Compare(x.UpperBound, y.UpperBound) })
	if len(b) == 0 || !math.IsInf(b[len(b)-1].UpperBound, 1) || math.IsNaN(b[0].UpperBound) {
		return nil
	}
	for i := range b {
		b[i].Count = finite(b[i].Count)
		if i > 0 {
			b[i].Count = max(b[i].Count, b[i-1].Count)
		}
	}
	return b
}

// HistogramQuantile is Prometheus' histogram_quantile: linear interpolation
// within the bucket that holds the rank, the first bucket starting at 0, and
// the last finite bound for ranks in the +Inf bucket. NaN without data.
func HistogramQuantile(q float64, buckets []Bucket) float64 {
	switch {
	case math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(1)
	}
	b := cleanBuckets(buckets)
	if len(b) < 2 || b[len(b)-1].Count == 0 {
		return math.NaN()
	}
	rank := q * b[len(b)-1].Count
	i, _ := slices.BinarySearchFunc(b[:len(b)-1], rank, func(x Bucket, r float64) int { return cmp.Compare(x.Count, r) })
	if i == len(b)-1 {
		return b[len(b)-2].UpperBound
	}
	if i == 0 && b[0].UpperBound <= 0 {
		return b[0].UpperBound
	}
	start, end, count := 0.0, b[i].UpperBound, b[i].Count
	if i > 0 {
		start = b[i-1].UpperBound
		count -= b[i-1].Count
		rank -= b[i-1].Count
	}
	return start + (end-start)*(rank/count)
}

// SlowerThan returns the histogram's requests and, as Errors, how many of them
// were slower than maxMs, interpolated within a bucket exactly as
// histogram_quantile does. Hence HistogramQuantile(q, b) > maxMs exactly when
// more than a 1-q fraction of the requests are slower than maxMs, and the
// latency check can be judged on counts. Without a +Inf bucket: no requests.
func SlowerThan(maxMs float64, buckets []Bucket) Counts {
	b := cleanBuckets(buckets)
	if b == nil || math.IsNaN(maxMs) {
		return Counts{}
	}
	total := b[len(b)-1].Count
	if len(b) == 1 || maxMs >= b[len(b)-2].UpperBound {
		// histogram_quantile never exceeds the last finite bound.
		return Counts{Requests: total}
	}
	prevBound, prevCount := 0.0, 0.0
	for _, x := range b {
		if maxMs < x.UpperBound {
			f := 0.0 // share of this bucket at or below maxMs
			if w := x.UpperBound - prevBound; w > 0 {
				f = min(max((maxMs-prevBound)/w, 0), 1)
			}
			return Counts{Requests: total, Errors: total - (prevCount + f*(x.Count-prevCount))}
		}
		prevBound, prevCount = x.UpperBound, x.Count
	}
	return Counts{Requests: total}
}
