// Package defaults applies the product packages' default settings in one
// way: a setting that is zero or negative is unset and takes its default.
package defaults

// Number is what a positive setting can be: a count, a size or a
// time.Duration.
type Number interface {
	~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64 | ~float64
}

// Positive sets *v to d when *v is zero or negative.
func Positive[T Number](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}
