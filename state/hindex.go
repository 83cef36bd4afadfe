package state

// hindex is the hash index of a Memory: an open-addressing table with linear
// probing. A cell holds slot+1 of an entry in its high 32 bits (0: empty)
// and the low 32 bits of its key's hash, which also give the cell's home
// position, so that growing and deleting never read a key. Keys whose
// hashes share those bits occupy cells of their own: a lookup compares the
// keys of the cells whose bits match.
//
// A new key costs one probe of one cache line in the common case, where a
// Go map costs a control word and a slot in different lines.
type hindex struct {
	cells []uint64
	n     int // occupied cells
}

// hindexMinCells is the size of a new index.
const hindexMinCells = 8

func cell(slot uint32, h uint32) uint64 { return uint64(slot+1)<<32 | uint64(h) }

// cellSlot returns the slot of an occupied cell.
func cellSlot(c uint64) uint32 { return uint32(c>>32) - 1 }

// home returns the position where a hash's probe starts.
func (x *hindex) home(h uint32) int { return int(h) & (len(x.cells) - 1) }

// next returns the position after pos, wrapping.
func (x *hindex) next(pos int) int { return (pos + 1) & (len(x.cells) - 1) }

// find returns the slot of the key whose hash is h, for which match (a
// comparison of the slot's key with the key looked up) holds, and the
// position of its cell; or false and the position where the probe ended.
func (x *hindex) find(h uint32, match func(slot uint32) bool) (slot uint32, pos int, ok bool) {
	if len(x.cells) == 0 {
		return 0, 0, false
	}
	for pos = x.home(h); ; pos = x.next(pos) {
		c := x.cells[pos]
		if c == 0 {
			return 0, pos, false
		}
		if uint32(c) == h && match(cellSlot(c)) {
			return cellSlot(c), pos, true
		}
	}
}

// reserve sizes an empty index for n keys.
func (x *hindex) reserve(n int) {
	size := hindexMinCells
	for size*3/4 < n {
		size *= 2
	}
	if x.n == 0 && size > len(x.cells) {
		x.cells = make([]uint64, size)
	}
}

// insert adds a cell for slot at the first free position of h's probe
// (the caller checked that its key is not there).
func (x *hindex) insert(h uint32, slot uint32) {
	if (x.n+1)*4 > len(x.cells)*3 {
		x.grow()
	}
	pos := x.home(h)
	for x.cells[pos] != 0 {
		pos = x.next(pos)
	}
	x.cells[pos] = cell(slot, h)
	x.n++
}

// grow doubles the table, moving each cell by its hash bits.
func (x *hindex) grow() {
	old := x.cells
	x.cells = make([]uint64, max(hindexMinCells, 2*len(old)))
	for _, c := range old {
		if c == 0 {
			continue
		}
		pos := x.home(uint32(c))
		for x.cells[pos] != 0 {
			pos = x.next(pos)
		}
		x.cells[pos] = c
	}
}

// remove empties the cell at pos, shifting back the cells after it that
// would otherwise no longer be found from their home positions.
func (x *hindex) remove(pos int) {
	x.cells[pos] = 0
	x.n--
	hole := pos
	for j := x.next(pos); x.cells[j] != 0; j = x.next(j) {
		// The cell at j may fill the hole if its home is not in (hole, j],
		// cyclically.
		h := x.home(uint32(x.cells[j]))
		if (hole <= j && (h <= hole || h > j)) || (hole > j && h <= hole && h > j) {
			x.cells[hole] = x.cells[j]
			x.cells[j] = 0
			hole = j
		}
	}
}

// reset empties the index and releases its table.
func (x *hindex) reset() { x.cells, x.n = nil, 0 }

// maxRetainedCells bounds the table that empty keeps.
const maxRetainedCells = 1 << 16

// empty empties the index, keeping its table unless it grew large.
func (x *hindex) empty() {
	if len(x.cells) > maxRetainedCells {
		x.reset()
		return
	}
	clear(x.cells)
	x.n = 0
}
