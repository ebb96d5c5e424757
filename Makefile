# igpt-suite: one entry point. `make` builds build/igpt (CPU always, CUDA when nvcc is found),
# `make test` installs what is missing, builds and runs every test, `make reproduce TABLE=x`.
# SAN=1 builds and tests under ASan+UBSan in build-san/.

SHELL    := /bin/bash
CC       ?= cc
SAN      ?= 0
BUILD    := $(if $(filter 1,$(SAN)),build-san,build)
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

# Debian packages: building, testing (HTTP fixtures, sklearn agreement, offline Fashion-MNIST).
BUILD_PKGS := gcc make pkg-config libcurl4-openssl-dev libjansson-dev libarchive-dev libpng-dev \
              zlib1g-dev libopenblas-dev libssl-dev libcriterion-dev g++ \
              libleveldb-dev libsnappy-dev libprotobuf-c-dev libisal-dev libgsl-dev
TEST_PKGS  := python3 python3-numpy python3-sklearn dataset-fashion-mnist
BENCH_PKGS := python3-torch python3-numpy python3-sklearn
TEST_PKGS  += python3-jsonschema  # reports: the report/results schemas are checked with it (no C JSON-Schema library in Debian)
TEST_PKGS  += libopenmpi-dev openmpi-bin  # data parallel: tests/test_dist.c trains over mpirun -np 2
TEST_PKGS  += slurm-wlm munge             # ci/slurm-cluster.sh runs a real one-node Slurm cluster
TEST_PKGS  += protobuf-c-compiler  # interop: the committed tf_bundle.pb-c.{c,h} are checked against protoc-c's output

PKGS     := jansson libcurl libarchive libpng zlib openblas libcrypto libprotobuf-c libisal
CFLAGS   := -std=gnu11 -D_GNU_SOURCE -O2 -g -fopenmp -Wall -Wextra -Werror -MMD -MP \
            -I. -Iruntime \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libleveldb (TF bundle .index tables, Snappy through it) ships no pkg-config file; it is C++.
# GSL for the claims' p-values (reports/stats.c); its CBLAS calls resolve to OpenBLAS, not gslcblas
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lleveldb -lstdc++ -lgsl -lm -fopenmp
CXXFLAGS := -std=c++17 -O2 -g -Wall -Wextra -Werror -MMD -MP -I. -Iruntime
ifeq ($(SAN),1)
CFLAGS   += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CXXFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDLIBS   += -fsanitize=address,undefined
endif

# Data parallel (runtime/engine/comm.h): Open MPI when found (pkg-config ompi-c, else mpicc), NCCL
# when nccl.h and libnccl are in the CUDA toolkit found below. Without them igpt runs one process;
# `igpt --version` says which.
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null || mpicc --showme:link 2>/dev/null)
ifneq ($(strip $(MPI_LIBS)),)
MPI_CFLAGS := -DIGPT_HAVE_MPI $(shell pkg-config --cflags ompi-c 2>/dev/null || mpicc --showme:compile 2>/dev/null)
LDLIBS     += $(MPI_LIBS)
endif

# CUDA: kernels/cuda/*.cu are built whenever nvcc and the toolkit's libraries are found (CUDA=0
# skips them), for sm_80 and sm_90 machine code plus compute_90 PTX, warnings as errors (host and
# device), and build/igpt links libcudart and libcublasLt from the toolkit (rpath'd). Without them
# kernels/cuda/absent.c stands in and --device cuda says the build has no CUDA.
# nvcc on PATH may be a wrapper script (some images put `exec /usr/local/cuda-13.0/bin/nvcc` in
# /usr/local/bin), so the toolkit's root is what nvcc itself reports (TOP in its dry run), not the
# folder above the nvcc that PATH finds. CUDA_HOME=... names a toolkit by hand.
CUDA_HOME  ?= /usr/local/cuda
NVCC       := $(if $(filter 0,$(CUDA)),,$(firstword $(wildcard $(CUDA_HOME)/bin/nvcc) $(shell command -v nvcc 2>/dev/null)))
CUDA_TOP   := $(if $(NVCC),$(realpath $(shell $(NVCC) --dryrun -v -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^\#\$$ TOP=//p')))
CUDA_LIB   := $(firstword $(patsubst %/libcudart.so,%,$(wildcard $(CUDA_TOP)/lib64/libcudart.so $(CUDA_TOP)/targets/*/lib/libcudart.so)))
ifeq ($(and $(NVCC),$(CUDA_LIB)),)
ifneq ($(NVCC),)
$(warning nvcc is $(NVCC) but no libcudart.so was found under its toolkit root '$(CUDA_TOP)'; building CPU only (set CUDA_HOME=<toolkit> to name one))
endif
NVCC       :=
CUDA_LIB   := $(firstword $(patsubst %/libcudart.so,%,$(wildcard $(CUDA_HOME)/lib64/libcudart.so)))
CUDA_TOP   := $(if $(CUDA_LIB),$(realpath $(CUDA_HOME)))
endif
ifneq ($(and $(wildcard $(CUDA_TOP)/include/nccl.h),$(wildcard $(CUDA_LIB)/libnccl.so)),)
NCCL_CFLAGS := -DIGPT_HAVE_NCCL -I$(CUDA_TOP)/include
LDLIBS     += -L$(CUDA_LIB) -Wl,-rpath,$(CUDA_LIB) -lnccl -lcudart
endif
COMMS      := $(if $(strip $(MPI_LIBS)),MPI) $(if $(NCCL_CFLAGS),NCCL)

# Every .c in the rooms (docs/architecture.md) is part of the engine library; runtime/cli/main.c
# is the command. A new file in a room needs no edit here.
ROOM_SRC := $(wildcard runtime/*/*.c kernels/cpu/*.c datasets/*.c reports/*.c)
LIB_SRC  := $(filter-out runtime/cli/main.c,$(ROOM_SRC))
ROOM_CXX := $(wildcard runtime/*/*.cc)  # C++ wrappers with a C interface (interop/tf_table.cc)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(ROOM_CXX:%.cc=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

CU_SRC   := $(wildcard kernels/cuda/*.cu)
ifneq ($(NVCC),)
CU_OBJ   := $(CU_SRC:%.cu=$(BUILD)/%.o)
NVFLAGS  := -std=c++20 -O3 -g -I. -Iruntime -MMD -MP \
            -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=[sm_90,compute_90] \
            -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror
LDLIBS   += -L$(CUDA_LIB) -Wl,-rpath,$(CUDA_LIB) -lcublasLt -lcudart -lstdc++
else
LIB_SRC  += kernels/cuda/absent.c
LIB_OBJ  += $(BUILD)/kernels/cuda/absent.o
endif

.PHONY: all deps test-deps bench-deps smoke-deps test bench check reproduce clean fuzz layers gpu-check gpu-bundle
all: $(BUILD)/igpt
	@echo "built $(BUILD)/igpt ($(VERSION)); CUDA: $(if $(NVCC),$(NVCC) ($(words $(CU_SRC)) kernel files),not found, CPU only); communicators: $(or $(strip $(COMMS)),none, single process)"

# whole-archive: the verbs are weak references in main.o, which alone would not pull them in
$(BUILD)/igpt: $(BUILD)/runtime/cli/main.o $(BUILD)/libigpt.a
	$(CC) $(CFLAGS) -o $@ $(BUILD)/runtime/cli/main.o -Wl,--whole-archive $(BUILD)/libigpt.a -Wl,--no-whole-archive $(LDLIBS)

$(BUILD)/libigpt.a: $(LIB_OBJ) $(CU_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# Only the communicator's objects (and its test) see the MPI and CUDA headers; they are rebuilt
# when the communicators found change (Open MPI installed after a first build).
COMM_OBJ := $(BUILD)/runtime/engine/comm.o $(BUILD)/runtime/engine/comm_nccl.o
$(COMM_OBJ) $(BUILD)/tests/test_comm: private CFLAGS += $(MPI_CFLAGS) $(NCCL_CFLAGS)
$(COMM_OBJ): $(BUILD)/comms.stamp
$(BUILD)/comms.stamp: FORCE
	@mkdir -p $(BUILD); echo '$(COMMS)' | cmp -s - $@ || echo '$(COMMS)' > $@
$(BUILD)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c -o $@ $<
$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c -o $@ $<

# The version lives in one object, rebuilt when `git describe` changes: a -D on every object
# would leave the ones not rebuilt (and the results they write) with an old version.
$(BUILD)/version.stamp: FORCE
	@mkdir -p $(BUILD); echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
$(BUILD)/runtime/base/version.o: runtime/base/version.c $(BUILD)/version.stamp
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DIGPT_VERSION_STRING='"$(VERSION)"' -c -o $@ $<
FORCE:

$(BUILD)/tests/%: tests/%.c $(BUILD)/libigpt.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libigpt.a $(LDLIBS) -lcriterion

# The benchmarks' C drivers (ci/bench_*.c), linked like the command (CUDA libraries included).
BENCH_BIN := $(BUILD)/ci/bench_model $(BUILD)/ci/bench_engine
$(BUILD)/ci/%: ci/%.c $(BUILD)/libigpt.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libigpt.a $(LDLIBS)

# Install missing Debian packages: apt-get when root, else print the command.
define apt_install
	@missing=""; for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "deps: all present ($(words $(1)) packages)"; \
	elif [ "$$(id -u)" = 0 ]; then echo "deps: installing$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/tmp/igpt-apt.log 2>&1 \
	  || { echo "deps: apt-get failed, see /tmp/igpt-apt.log"; exit 1; }; \
	else echo "deps: missing$$missing; run: sudo apt-get install -y$$missing"; exit 1; fi
endef

deps:
	$(call apt_install,$(BUILD_PKGS))
test-deps: deps
	$(call apt_install,$(TEST_PKGS))
bench-deps: deps
	$(call apt_install,$(BENCH_PKGS))
# the smoke scale's data: Fashion-MNIST from Debian (without it smoke runs the synthetic stand-in,
# whose accuracies sit at chance)
smoke-deps:
	$(call apt_install,dataset-fashion-mnist)

# make reproduce TABLE=linear-probe|fine-tune|low-data-cifar|bert-comparison|all [SCALE=smoke] [JOBS=n]
# [EXECUTOR=slurm] (docs/slurm.md):
# runs the table's job graph through the cache (cache/, reused by every rerun) and writes
# results/<table>/<scale>/ (results.json, and report.json/report.html when igpt report is built).
SCALE ?= smoke
# The build runs in a sub-make: on a fresh machine the packages deps installs were not there when
# this make read pkg-config's flags.
reproduce: deps $(if $(filter smoke cpu,$(SCALE)),smoke-deps)
	@test -n "$(TABLE)" || { echo "usage: make reproduce TABLE=linear-probe|fine-tune|low-data-cifar|bert-comparison|all [SCALE=smoke] [JOBS=n]"; exit 2; }
	@$(MAKE) --no-print-directory all
	$(BUILD)/igpt run $(TABLE) --scale $(SCALE) $(if $(JOBS),--jobs $(JOBS)) $(if $(EXECUTOR),--executor $(EXECUTOR))

# The rooms check (docs/architecture.md): includes go down ci/rooms.txt's order, no module cycle.
layers:
	@python3 ci/layers.py

test: test-deps
	@python3 ci/layers.py
	@$(MAKE) --no-print-directory all $(TEST_BIN)
	@BUILD=$(BUILD) ci/test.sh $(TEST_BIN)

bench: bench-deps all $(BENCH_BIN)
	ci/bench-cpu.sh
	ci/bench-model.sh
	ci/bench-features.sh
	ci/bench-data.sh
	ci/bench-sample.sh
	ci/bench-probe.sh

# One call on a GPU machine: builds (or uses the carried build/), runs every GPU test and the GPU
# benchmarks against PyTorch, prints a table last (ci/gpu-check.sh; README: what to carry).
gpu-check: all $(BENCH_BIN) $(BUILD)/tests/test_cuda $(BUILD)/tests/test_device $(BUILD)/tests/test_comm
	ci/gpu-check.sh
# The binaries and their non-CUDA libraries in BUILD/gpu-bundle.tar.xz, for a GPU machine without
# the Debian -dev packages (ci/gpu-bundle.sh; gpu-check.sh unpacks it when build/igpt cannot run).
gpu-bundle: all $(BENCH_BIN) $(BUILD)/tests/test_cuda $(BUILD)/tests/test_device $(BUILD)/tests/test_comm
	ci/gpu-bundle.sh $(BUILD)

# libFuzzer harnesses (clang): `make fuzz` builds build-fuzz/fuzz_*; run one with
# `build-fuzz/fuzz_X tests/fixtures/fuzz/X -max_total_time=120`; crashes go to tests/fixtures/fuzz/.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_LIB := $(filter-out kernels/cuda/absent.c,$(LIB_SRC)) kernels/cuda/absent.c
fuzz: deps
	@mkdir -p build-fuzz
	@for c in $(ROOM_CXX); do clang++ -std=c++17 -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=vptr -I. -Iruntime \
	    -c -o build-fuzz/$$(basename $$c .cc).o $$c || exit 1; done
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); echo "fuzz: build-fuzz/$$n"; \
	  clang -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I. -Iruntime \
	    -DIGPT_VERSION_STRING='"fuzz"' $$(pkg-config --cflags $(PKGS)) -fopenmp -o build-fuzz/$$n $$f $(FUZZ_LIB) \
	    $(addprefix build-fuzz/,$(notdir $(ROOM_CXX:.cc=.o))) $(LDLIBS) || exit 1; done

clean:
	rm -rf build build-san build-fuzz

-include $(LIB_OBJ:.o=.d) $(CU_OBJ:.o=.d) $(BUILD)/runtime/cli/main.d

# Headless-Chromium look at a rendered report (installs Debian's chromium; not part of `make test`).
screenshot: all
	ci/screenshot.sh $(RESULTS)

# Regression check: latest results/<table>/<scale>/ against suite/baselines/<scale>.json and the
# published numbers (judged only at paper/released scale); exits non-zero on a regression.
check: all
	$(BUILD)/igpt check --scale $(or $(SCALE),smoke)
