from alpine AS build
run true
