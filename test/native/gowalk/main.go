// A static Go program for test/programs.test.ts: Go's runtime makes its system calls itself (no libc, so no
// preload library), from many threads. It walks a directory, hashes every regular file in goroutines, and starts
// itself again through os.Executable (/proc/self/exe) to read one file.
package main

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "child" {
		b, err := os.ReadFile(os.Args[2])
		if err != nil {
			fmt.Println("child error", err)
			os.Exit(3)
		}
		fmt.Printf("child %d\n", len(b))
		return
	}
	root := os.Args[1]
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		fmt.Println("walk error", err)
		os.Exit(2)
	}
	sort.Strings(files)
	sums := make([][32]byte, len(files))
	var wg sync.WaitGroup
	for i := range files {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			b, err := os.ReadFile(files[i])
			if err != nil {
				fmt.Println("read error", err)
				os.Exit(2)
			}
			sums[i] = sha256.Sum256(b)
		}(i)
	}
	wg.Wait()
	h := sha256.New()
	for _, s := range sums {
		h.Write(s[:])
	}
	fmt.Printf("files %d %x\n", len(files), h.Sum(nil))
	self, _ := os.Executable()
	out, err := exec.Command(self, "child", files[0]).Output()
	fmt.Printf("self %s %s", self, out)
	if err != nil {
		fmt.Println("exec error", err)
		os.Exit(2)
	}
}
