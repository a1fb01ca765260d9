package mcproxyproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNoBinary is wrapped by CheckBinary's error.
var ErrNoBinary = errors.New("mcproxy binary not found (make build)")

// CheckBinary returns the absolute path of the mcproxy binary at path, or
// an error if there is no executable file there.
func CheckBinary(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("mcproxy binary %q: %w", path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrNoBinary, path, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%w: %q is not an executable file", ErrNoBinary, path)
	}
	return abs, nil
}
