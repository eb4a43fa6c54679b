#!/bin/bash
# gpu-sizes-check.sh: check tasks of a size on a real NVIDIA GPU node.
#
#   scripts/gpu-sizes-check.sh HTEXCTL
#
# A local daemon starts one pool of 4 slots, pinned (cpu_affinity block:
# the node's CPUs in 4 blocks), on GPU 0 shared by all 4
# (available_accelerators = 4 on one GPU: MPS). Then, at the same time:
#   - a task of --gpus 1: charged every slot that shares GPU 0 (a whole
#     GPU, docs/task-sizes.md), it must see CUDA_VISIBLE_DEVICES=0, CUDA
#     must count one device (when python3 can load libcuda.so.1), and its
#     CPU mask must be the CPUs of all 4 slots: every CPU of the node;
#   - a task of --cores 3, submitted after it: it must get 3 CPUs
#     (its mask and OMP_NUM_THREADS=3) and must not start before the GPU
#     task has ended, since the GPU task holds every slot.
# It prints each task's output and the results as JSON, and checks them.
# Exit status: 0 passed; 1 a check failed; 2 usage; 3 no NVIDIA GPU.
set -u
[ $# -eq 1 ] || { echo "usage: $0 HTEXCTL" >&2; exit 2; }
bin=$1
case "$bin" in /*) ;; *) bin=$PWD/$bin ;; esac
[ -x "$bin" ] || { echo "gpu-sizes-check: $bin is not executable" >&2; exit 2; }
command -v nvidia-smi >/dev/null && nvidia-smi -L | grep -q '^GPU ' ||
	{ echo "gpu-sizes-check: no NVIDIA GPU here" >&2; exit 3; }
[ "$(nproc)" -ge 8 ] || { echo "gpu-sizes-check: needs 8 CPUs, this node has $(nproc)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/htex-gpu-sizes.XXXXXX") || exit 1
export HTEX_RUN_DIR=$work/run
unset CUDA_VISIBLE_DEVICES ROCR_VISIBLE_DEVICES HIP_VISIBLE_DEVICES ZE_AFFINITY_MASK
cat >"$work/c.toml" <<EOF
[executor]
label = "gpu-sizes"
max_workers_per_node = 4
cores_per_worker = 2
cpu_affinity = "block"
available_accelerators = 4
gpus_per_node = 1
accelerator_vendor = "auto"
[provider]
kind = "local"
init_blocks = 1
max_blocks = 1
[strategy]
kind = "none"
EOF
daemon=
cleanup() {
	if [ -n "$daemon" ]; then
		"$bin" stop >/dev/null 2>&1
		for _ in $(seq 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
		kill "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
"$bin" serve --config "$work/c.toml" --log-level warn >"$work/serve.log" 2>&1 &
daemon=$!
for _ in $(seq 200); do [ -f "$HTEX_RUN_DIR/connection.json" ] && break; sleep 0.1; done

show='echo start $(date +%s.%N); echo CVD=${CUDA_VISIBLE_DEVICES-unset} OMP=${OMP_NUM_THREADS-unset}
grep Cpus_allowed_list /proc/self/status
python3 -c "import ctypes; c=ctypes.CDLL(\"libcuda.so.1\"); n=ctypes.c_int(); c.cuInit(0); c.cuDeviceGetCount(ctypes.byref(n)); print(\"cuda_devices\", n.value)" 2>/dev/null
sleep 2; echo end $(date +%s.%N)'
gpu=$("$bin" submit --gpus 1 -- sh -c "$show") || exit 1
cpu=$("$bin" submit --cores 3 -- sh -c "$show") || exit 1
"$bin" wait "$gpu" >/dev/null && "$bin" wait "$cpu" >/dev/null || { tail "$work/serve.log"; exit 1; }
"$bin" results --json "$gpu" >"$work/gpu.json"
"$bin" results --json "$cpu" >"$work/cpu.json"
out() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))[0]; print(r.get("stdout",""), end="")' "$1"; }
echo "== --gpus 1"; out "$work/gpu.json" | tee "$work/gpu.out"; cat "$work/gpu.json"; echo
echo "== --cores 3"; out "$work/cpu.json" | tee "$work/cpu.out"; cat "$work/cpu.json"; echo

fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }
ncpus() { python3 -c 'import sys
n=0
for p in sys.argv[1].split(","):
    a,_,b=p.partition("-"); n+=int(b or a)-int(a)+1
print(n)' "$1"; }
gcpus=$(sed -n 's/^Cpus_allowed_list:\s*//p' "$work/gpu.out")
ccpus=$(sed -n 's/^Cpus_allowed_list:\s*//p' "$work/cpu.out")
check "--gpus 1 sees CUDA_VISIBLE_DEVICES=0" "grep -q '^CVD=0 ' '$work/gpu.out'"
check "--gpus 1: CUDA counts one device (or python3/libcuda missing)" \
	"! grep -q cuda_devices '$work/gpu.out' || grep -q '^cuda_devices 1$' '$work/gpu.out'"
check "--gpus 1 holds the 4 slots' CPUs, all $(nproc) ($gcpus)" "[ \"\$(ncpus '$gcpus')\" = $(nproc) ]"
check "--cores 3 gets 3 CPUs ($ccpus) and OMP_NUM_THREADS=3" "[ \"\$(ncpus '$ccpus')\" = 3 ] && grep -q 'OMP=3$' '$work/cpu.out'"
gend=$(sed -n 's/^end //p' "$work/gpu.out") cstart=$(sed -n 's/^start //p' "$work/cpu.out")
check "--cores 3 started after the GPU task ended ($cstart >= $gend)" "python3 -c 'import sys; sys.exit(0 if $cstart >= $gend else 1)'"
exit $fail
