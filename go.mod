module github.com/phalanx-defence/phalanx

go 1.26.8
