package proxy

// fifo is a growable ring buffer of requests: a backend connection's
// requests written and waiting for their replies, oldest first, since
// memcached answers in order. Owned by the connection's loop.
type fifo struct {
	buf        []*request
	head, size int
}

func (f *fifo) len() int { return f.size }

func (f *fifo) push(r *request) {
	if f.size == len(f.buf) {
		nb := make([]*request, max(16, 2*len(f.buf)))
		for i := 0; i < f.size; i++ {
			nb[i] = f.buf[(f.head+i)%len(f.buf)]
		}
		f.buf, f.head = nb, 0
	}
	f.buf[(f.head+f.size)%len(f.buf)] = r
	f.size++
}

func (f *fifo) peek() *request {
	if f.size == 0 {
		return nil
	}
	return f.buf[f.head]
}

func (f *fifo) pop() *request {
	r := f.buf[f.head]
	f.buf[f.head] = nil
	f.head = (f.head + 1) % len(f.buf)
	f.size--
	return r
}

// takeAll removes and returns everything, oldest first.
func (f *fifo) takeAll() []*request {
	out := make([]*request, 0, f.size)
	for f.size > 0 {
		out = append(out, f.pop())
	}
	return out
}
