#!/bin/sh
echo "bench app: $(ls /workspace/static | wc -l) static files"
