from alpine
run true
Copy a b
ENV A=b
