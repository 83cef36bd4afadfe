module github.com/kstreamgo/kstream

go 1.26
