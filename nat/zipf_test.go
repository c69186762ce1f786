package nat

import (
	"math"
	"math/rand/v2"
	"sort"
)

// zipf draws ranks 0..n-1 with P(k) proportional to 1/(k+1)^1.1, from a
// fixed seed (math/rand's Zipf wants s > 1 and v >= 1 and is the same law;
// this one keeps the benchmark's order reproducible across Go versions).
type zipf struct {
	cdf []float64
	rng *rand.Rand
}

func newZipf(n int) *zipf {
	z := &zipf{cdf: make([]float64, n), rng: rand.New(rand.NewPCG(1, 2))}
	sum := 0.0
	for k := range n {
		sum += 1 / math.Pow(float64(k+1), 1.1)
		z.cdf[k] = sum
	}
	for k := range z.cdf {
		z.cdf[k] /= sum
	}
	return z
}

func (z *zipf) next() int {
	return sort.SearchFloat64s(z.cdf, z.rng.Float64())
}
