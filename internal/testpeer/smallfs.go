package testpeer

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

// SmallFS mounts a tmpfs of size bytes on a new temporary directory and
// unmounts it at cleanup: a disk that fills, as an SD card does. Mounting
// needs root; without it the test is skipped, or failed under CI=true.
func SmallFS(t testing.TB, size int64) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "smallfs-")
	if err != nil {
		t.Fatalf("small file system: %v", err)
	}
	opts := fmt.Sprintf("size=%d,mode=0700", size)
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		os.Remove(dir)
		msg := fmt.Sprintf("mounting a %d-byte tmpfs needs root (%v): run the tests as root to check a full disk", size, err)
		if CI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
		os.Remove(dir)
	})
	return dir
}

// FillFS writes a file in dir until the file system has no more than
// leave bytes free (none when leave is 0), and returns its path; removing
// it gives the space back. Files written after it take from what is left.
func FillFS(t testing.TB, dir string, leave int64) string {
	t.Helper()
	path, err := os.CreateTemp(dir, "filler-")
	if err != nil {
		t.Fatalf("fill %s: %v", dir, err)
	}
	f := path
	defer f.Close()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatalf("fill %s: %v", dir, err)
	}
	if free := int64(st.Bavail) * st.Bsize; free > leave && leave > 0 {
		if _, err := f.Write(make([]byte, free-leave)); err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("fill %s: %v", dir, err)
		}
		_ = f.Sync()
		return f.Name()
	}
	buf := make([]byte, 64<<10)
	for size := len(buf); size > 0; {
		_, err := f.Write(buf[:size])
		if err == nil {
			continue
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("fill %s: %v", dir, err)
		}
		// Fill the last blocks too.
		size /= 2
	}
	_ = f.Sync()
	return f.Name()
}
