FROM busybox
COPY picked.txt /picked.txt
LABEL picked-by=-f
