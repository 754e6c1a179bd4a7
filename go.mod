module github.com/capuchin/capuchin

go 1.26
