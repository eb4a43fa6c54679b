#!/bin/bash
# gpu-check.sh: check on a real NVIDIA GPU node that each slot of a worker
# pool sees exactly its own GPU.
#
#   scripts/gpu-check.sh HTEXCTL [SLOTS]
#
# HTEXCTL is a built htexctl binary. SLOTS defaults to the number of GPUs
# `nvidia-smi -L` lists; more slots than GPUs are spread over the GPUs as
# with NVIDIA MPS (contiguous blocks), fewer use GPUs 0..SLOTS-1.
#
# It starts a local daemon (provider local, one block, one pool on this
# node) whose config has SLOTS accelerator entries and accelerator_vendor
# "auto", runs one task per slot at the same time (each waits until all have
# started, so every slot runs one), and each task prints the device
# variables it got, `nvidia-smi -L`, and, when python3 can load libcuda.so.1,
# how many devices cuInit/cuDeviceGetCount see and their UUIDs. Then it
# checks every slot: CUDA_VISIBLE_DEVICES is the slot's GPU, the other
# vendors' variables were not set, CUDA sees exactly one device (the GPU
# nvidia-smi lists under that index), and slots on different GPUs see
# different devices. It also prints what `htexctl plan` says with
# accelerator_vendor auto on this node, which must be nvidia.
#
# Needs: the binary (and the libzmq it links), bash, coreutils and the
# NVIDIA driver tools; python3 only for the device count. Runs in well under
# two minutes and stops everything it started, by pid.
#
# Exit status: 0 every check passed; 1 a check failed; 2 usage; 3 no NVIDIA
# GPU on this machine. NVIDIA_SMI names another nvidia-smi (for testing
# this script); KEEP=1 keeps the work directory.
set -u

usage() { echo "usage: $0 HTEXCTL [SLOTS]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
bin=$1
[ -x "$bin" ] || { echo "gpu-check: $bin is not an executable htexctl" >&2; exit 2; }
case "$bin" in /*) ;; *) bin=$PWD/$bin ;; esac
smi=${NVIDIA_SMI:-nvidia-smi}

# --- a GPU? ---------------------------------------------------------------
if ! command -v "$smi" >/dev/null 2>&1; then
	echo "gpu-check: no NVIDIA GPU present: $smi is not installed" >&2
	exit 3
fi
smi_list=$("$smi" -L 2>&1)
gpus=$(printf '%s\n' "$smi_list" | grep -c '^GPU ')
if [ "$gpus" -lt 1 ]; then
	echo "gpu-check: no NVIDIA GPU present: '$smi -L' lists none:" >&2
	printf '%s\n' "$smi_list" | sed 's/^/  /' >&2
	exit 3
fi
slots=${2:-$gpus}
case "$slots" in '' | *[!0-9]* | 0) echo "gpu-check: SLOTS '$slots': want a number >= 1" >&2; exit 2 ;; esac

echo "== $gpus GPU(s) on $(hostname):"
printf '%s\n' "$smi_list" | sed 's/^/  /'
echo "== $slots slot(s)"

# gpu_of I: the GPU of slot I when $slots slots are spread over the GPUs in
# contiguous blocks whose sizes differ by at most one, larger blocks first
# (the pinning package's rule); slot I on GPU I when there are enough GPUs.
gpu_of() {
	local i=$1 n=$slots g=$gpus
	if [ "$n" -le "$g" ]; then echo "$i"; return; fi
	local q=$((n / g)) r=$((n % g))
	local big=$((r * (q + 1)))
	if [ "$i" -lt "$big" ]; then echo $((i / (q + 1))); else echo $((r + (i - big) / q)); fi
}
# uuid_of G: the UUID nvidia-smi -L gives GPU G.
uuid_of() {
	printf '%s\n' "$smi_list" | grep "^GPU $1:" | sed -n 's/.*(UUID: \(GPU-[^)]*\)).*/\1/p'
}

# --- work directory, config, daemon ---------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/htex-gpu-check.XXXXXX") || exit 1
run=$work/run
probe_dir=$work/probe
mkdir -p "$run" "$probe_dir"
chmod 700 "$run"
cfg=$work/gpu-check.toml
cat >"$cfg" <<EOF
# written by scripts/gpu-check.sh
[executor]
label = "gpu-check"
max_workers_per_node = $slots
cores_per_worker = 0.01
available_accelerators = $slots
gpus_per_node = $gpus
accelerator_vendor = "auto"
heartbeat_period = 1
heartbeat_threshold = 10

[provider]
kind = "local"
init_blocks = 1
max_blocks = 1
walltime = "00:10:00"

[strategy]
kind = "none"
EOF

daemon=
waiter=
cleanup() {
	local code=$?
	[ -n "$waiter" ] && kill "$waiter" 2>/dev/null
	if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
		# stop drains the pool and cancels the block; give it 20 s, then the
		# daemon's pid gets SIGTERM, then SIGKILL. Its pool exits on its own
		# after heartbeat_threshold without the daemon.
		HTEX_RUN_DIR=$run "$bin" stop >/dev/null 2>&1 &
		local stopper=$!
		for _ in $(seq 200); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
		kill "$stopper" 2>/dev/null
		if kill -0 "$daemon" 2>/dev/null; then
			kill "$daemon" 2>/dev/null
			for _ in $(seq 50); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
			kill -9 "$daemon" 2>/dev/null
		fi
		wait "$daemon" 2>/dev/null
	fi
	if [ "${KEEP:-0}" = 1 ]; then echo "gpu-check: work directory kept: $work"; else rm -rf "$work"; fi
	exit "$code"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The daemon, its pool and the tasks get no inherited device lists: what
# the tasks see is what htex set.
unset CUDA_VISIBLE_DEVICES ROCR_VISIBLE_DEVICES HIP_VISIBLE_DEVICES GPU_DEVICE_ORDINAL ZE_AFFINITY_MASK \
	ZE_ENABLE_PCI_ID_DEVICE_ORDER HTEX_CORES HTEX_MEMORY_GB
export HTEX_RUN_DIR=$run

echo "== htexctl plan with accelerator_vendor auto on this node"
plan_out=$("$bin" plan --config "$cfg" --accelerator-vendor auto 2>&1)
plan_code=$?
printf '%s\n' "$plan_out" | sed 's/^/  /'
plan_vendor=$(printf '%s\n' "$plan_out" | sed -n 's/^vendor:  *\([a-z]*\) .*/\1/p')

"$bin" serve --config "$cfg" --log-level info >"$work/serve.log" 2>&1 &
daemon=$!
for _ in $(seq 200); do
	[ -f "$run/connection.json" ] && break
	kill -0 "$daemon" 2>/dev/null || { echo "gpu-check: the daemon exited:" >&2; tail -20 "$work/serve.log" >&2; exit 1; }
	sleep 0.1
done
[ -f "$run/connection.json" ] || { echo "gpu-check: the daemon did not start in 20 s" >&2; tail -20 "$work/serve.log" >&2; exit 1; }

# --- one task per slot ----------------------------------------------------
# Each task waits (at most 30 s) until every task has started, so that all
# slots hold one at once, then writes its report to probe/slot.<rank>.
task=$(cat <<'EOF'
touch "$PROBE_DIR/started.$HTEX_TASK_ID"
n=0
while [ "$(ls "$PROBE_DIR" | grep -c '^started\.')" -lt "$SLOTS" ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done
out="$PROBE_DIR/slot.$HTEX_WORKER_RANK"
{
	echo "task=$HTEX_TASK_ID"
	for v in CUDA_VISIBLE_DEVICES ROCR_VISIBLE_DEVICES HIP_VISIBLE_DEVICES GPU_DEVICE_ORDINAL ZE_AFFINITY_MASK ZE_ENABLE_PCI_ID_DEVICE_ORDER; do
		if env | grep -q "^$v="; then echo "$v=$(env | sed -n "s/^$v=//p")"; else echo "$v=<unset>"; fi
	done
	"$SMI" -L 2>&1 | sed 's/^/smi: /'
	if command -v python3 >/dev/null 2>&1; then
		python3 - <<'PY' 2>&1
import ctypes, sys
try:
    cu = ctypes.CDLL("libcuda.so.1")
except OSError as e:
    print("cuda_count=unmeasured (libcuda.so.1: %s)" % e); sys.exit()
r = cu.cuInit(0)
if r == 100:  # CUDA_ERROR_NO_DEVICE: CUDA_VISIBLE_DEVICES leaves no device
    print("cuda_count=0"); sys.exit()
if r != 0:
    print("cuda_count=error (cuInit returned %d)" % r); sys.exit()
n = ctypes.c_int()
r = cu.cuDeviceGetCount(ctypes.byref(n))
if r != 0:
    print("cuda_count=error (cuDeviceGetCount returned %d)" % r); sys.exit()
print("cuda_count=%d" % n.value)
uuids = []
for i in range(n.value):
    d = ctypes.c_int()
    u = (ctypes.c_ubyte * 16)()
    if cu.cuDeviceGet(ctypes.byref(d), i) == 0 and cu.cuDeviceGetUuid(u, d) == 0:
        h = bytes(u).hex()
        uuids.append("GPU-%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:]))
print("cuda_uuids=" + ",".join(uuids))
PY
	else
		echo "cuda_count=unmeasured (no python3)"
	fi
} >"$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
EOF
)
job=$("$bin" submit --env "PROBE_DIR=$probe_dir" --env "SLOTS=$slots" --env "SMI=$smi" \
	--array "1-$slots" --timeout 60s -- bash -c "$task") || { echo "gpu-check: submit failed" >&2; exit 1; }
echo "== job $job: $slots task(s), one per slot"

"$bin" wait "$job" >/dev/null 2>&1 &
waiter=$!
for _ in $(seq 900); do kill -0 "$waiter" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$waiter" 2>/dev/null; then
	echo "gpu-check: the tasks did not finish in 90 s" >&2
	"$bin" results "$job" >&2
	exit 1
fi
wait "$waiter"
waiter=
"$bin" results "$job" | sed 's/^/  /'
echo "== the pool's log"
grep -rh "accelerator vendor\|pool started" "$run/blocks" 2>/dev/null | sed 's/^/  /'

# --- checks ---------------------------------------------------------------
fail=0
check() { # check OK|FAIL|WARN message
	echo "  $1  $2"
	[ "$1" = FAIL ] && fail=1
	return 0
}
echo "== checks"
if [ "$plan_code" = 0 ] && [ "$plan_vendor" = nvidia ]; then
	check OK "plan: accelerator_vendor auto detects nvidia on this node"
else
	check FAIL "plan: accelerator_vendor auto gives '${plan_vendor:-nothing}' on this node (exit $plan_code), want nvidia"
fi
declare -A seen_uuid
for ((r = 0; r < slots; r++)); do
	f=$probe_dir/slot.$r
	g=$(gpu_of "$r")
	if [ ! -f "$f" ]; then
		check FAIL "slot $r: no task reported from this slot"
		continue
	fi
	val() { sed -n "s/^$1=//p" "$f" | head -1; }
	cvd=$(val CUDA_VISIBLE_DEVICES)
	if [ "$cvd" = "$g" ]; then
		check OK "slot $r: CUDA_VISIBLE_DEVICES=$cvd (GPU $g)"
	else
		check FAIL "slot $r: CUDA_VISIBLE_DEVICES=$cvd, want $g"
	fi
	others=""
	for v in ROCR_VISIBLE_DEVICES HIP_VISIBLE_DEVICES GPU_DEVICE_ORDINAL ZE_AFFINITY_MASK; do
		[ "$(val $v)" = "<unset>" ] || others="$others $v=$(val $v)"
	done
	if [ -z "$others" ]; then
		check OK "slot $r: no other vendor's variable set"
	else
		check FAIL "slot $r: other vendors' variables set:$others"
	fi
	count=$(val cuda_count)
	uuids=$(val cuda_uuids)
	want_uuid=$(uuid_of "$g")
	case "$count" in
	1)
		check OK "slot $r: CUDA sees exactly 1 device ($uuids)"
		if [ "$uuids" = "$want_uuid" ]; then
			check OK "slot $r: it is GPU $g of nvidia-smi -L"
		else
			check WARN "slot $r: CUDA's device $uuids is not GPU $g of nvidia-smi -L ($want_uuid); set CUDA_DEVICE_ORDER=PCI_BUS_ID for the same numbering"
		fi
		if [ "$slots" -le "$gpus" ] && [ -n "${seen_uuid[$uuids]:-}" ]; then
			check FAIL "slot $r: the same device as slot ${seen_uuid[$uuids]}"
		fi
		seen_uuid[$uuids]=$r
		;;
	unmeasured*) check WARN "slot $r: device count $count" ;;
	*) check FAIL "slot $r: CUDA sees $count device(s), want exactly 1" ;;
	esac
done
if [ "$fail" = 0 ]; then
	echo "== gpu-check: every check passed"
else
	echo "== gpu-check: FAILED (see FAIL above)"
fi
exit "$fail"
