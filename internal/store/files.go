package store

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// FileInfo names one file of a checkpoint directory.
type FileInfo struct {
	// Name is the file's base name, such as "000042.sst" or "MANIFEST-000001".
	Name string
	// Size is the file's size in bytes.
	Size int64
}

// ListFiles lists the files of a DB or checkpoint directory on the local
// filesystem, sorted by name: what a snapshot publisher uploads. The
// directory must be flat, as Pebble writes it; a subdirectory or any other
// non-regular entry is an error rather than something silently left out,
// except the tables a sorted batch is writing, which are not yet the DB's.
func ListFiles(dir string) ([]FileInfo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list store files in %s: %w", dir, err)
	}
	files := make([]FileInfo, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() && e.Name() == stageDir {
			continue
		}
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("list store files in %s: %s is not a regular file", dir, e.Name())
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("list store files in %s: %w", dir, err)
		}
		files = append(files, FileInfo{Name: e.Name(), Size: info.Size()})
	}
	slices.SortFunc(files, func(a, b FileInfo) int { return strings.Compare(a.Name, b.Name) })
	return files, nil
}
