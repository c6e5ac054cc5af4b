# Only for bench/compare.py: AutoGen's DockerCommandLineCodeExecutor defaults to python:3-slim,
# which cannot be pulled here. This is our python sandbox image run as root, as python:3-slim is:
# AutoGen bind-mounts a host temporary directory (mode 0700, owned by the bench's user) as its
# workspace and runs `timeout 60 python tmp_code_<sha>.python` there with `docker exec`.
ARG BASE_IMAGE=agent-sandbox/python:1
FROM ${BASE_IMAGE}
USER root
