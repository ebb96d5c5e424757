#!/usr/bin/python3
"""GPU-hours of each paper table at SCALE=paper (docs/slurm.md): the table's jobs from
`igpt graph TABLE --scale paper`, each job's arithmetic from its model shape (suite/models.json)
and image size (the prepare job it reads), converted to time with a stated GPU throughput and a
ring all-reduce model. Every assumption is a flag; the defaults are the ones docs/slurm.md states.

usage: ci/gpu-hours.py [--igpt build/igpt] [--tflops 335] [--gpus 8] [--link-gbs 360] [--markdown]

Arithmetic (per token; L layers, width d, context T, N = 12 L d^2 block parameters):
  training step: 6 N + 12 L T d  (matrix products forward and backward, attention scores and mix)
  forward only (features): 2 N + 4 L T d
Data parallel on n GPUs: each step's gradient (4 bytes a parameter) goes through a ring
all-reduce, 2 (n - 1) / n of its bytes in and out of every GPU over the link, not overlapped with
the compute (an upper bound): step time = FLOPs / (n * rate) + 2 (n-1)/n * 4 P / link.
"""
import argparse, json, os, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLES = ["linear-probe", "fine-tune", "low-data-cifar", "bert-comparison"]
# Images a features job passes over (train + val + test splits, every mask), per data set
IMAGES = {"cifar10": 60000, "cifar100": 60000, "stl10": 13000, "imagenet32": 1331167, "imagenet48": 1331167,
          "imagenet64": 1331167}


def graph(igpt, table):
    dot = subprocess.run([igpt, "graph", table, "--scale", "paper"], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    labels = dict(re.findall(r'^\s*"(\w+)" \[label="([^"\\]*)', dot, re.M))
    inputs = {}
    for a, b, name in re.findall(r'^\s*"(\w+)" -> "(\w+)" \[label="([^"]*)"\]', dot, re.M):
        inputs.setdefault(b, []).append((name, a))
    return labels, inputs


def ancestor(labels, inputs, key, prefix):
    """The first job upstream of key whose label starts with prefix."""
    todo, seen = [key], set()
    while todo:
        k = todo.pop(0)
        if k in seen:
            continue
        seen.add(k)
        if k != key and labels[k].startswith(prefix):
            return k
        todo += [a for _, a in inputs.get(k, [])]
    return None


def side(labels, inputs, key):
    p = ancestor(labels, inputs, key, "prepare ")
    m = re.search(r"(\d+)x\1", labels[p]) if p else None
    return int(m.group(1)) if m else 32


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--igpt", default=os.path.join(ROOT, "build/igpt"))
    ap.add_argument("--tflops", type=float, default=335.0,
                    help="sustained training TFLOP/s per GPU (default: REFERENCE.md 6, iGPT-S step on one H100)")
    ap.add_argument("--gpus", type=int, default=8, help="GPUs per data-parallel job (scales.json slurm.pretrain.ranks)")
    ap.add_argument("--link-gbs", type=float, default=360.0, help="all-reduce bus bandwidth per GPU, GB/s")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    models = json.load(open(os.path.join(ROOT, "suite/models.json")))["models"]
    scale = json.load(open(os.path.join(ROOT, "suite/scales.json")))["scales"]["paper"]
    pre, ft = scale["pretrain"], scale["finetune"]
    rate = a.tflops * 1e12
    n = a.gpus

    def step_hours(flops_per_step, params, steps):
        compute = flops_per_step / (n * rate)
        allreduce = 2 * (n - 1) / n * 4 * params / (a.link_gbs * 1e9) if n > 1 else 0.0
        return n * steps * (compute + allreduce) / 3600, allreduce / (compute + allreduce)

    rows, seen_total = [], {}
    for table in TABLES:
        labels, inputs = graph(a.igpt, table)
        hours = {"pretrain": 0.0, "finetune": 0.0, "features": 0.0}
        comm = []
        for key, label in labels.items():
            verb = label.split()[0]
            if verb not in hours:
                continue
            m = re.search(r"igpt-[smlx]+l?", label)
            src = ancestor(labels, inputs, key, "pretrain ") if verb != "pretrain" else key
            mname = re.search(r"(igpt-\w+)", labels[src]).group(1) if src else (m.group(0) if m else None)
            cfg = models[mname]
            L, d = cfg["n_layer"], cfg["n_embd"]
            T = side(labels, inputs, key) ** 2
            P = 12 * L * d * d
            if verb == "pretrain":
                h, c = step_hours((6 * P + 12 * L * T * d) * pre["batch"] * T, P, pre["steps"])
                comm.append(c)
            elif verb == "finetune":
                h, c = step_hours((6 * P + 12 * L * T * d) * ft["batch"] * T, P, ft["steps"])
                comm.append(c)
            else:
                ds = re.match(r"features (\S+)", label).group(1)
                masks = 5 if "ensemble" in label else 1
                h = (2 * P + 4 * L * T * d) * T * IMAGES.get(ds, 60000) * masks / rate / 3600
            hours[verb] += h
            seen_total[key] = (verb, h)
        rows.append((table, hours, max(comm) if comm else 0.0))
    total = {}
    for verb, h in seen_total.values():
        total[verb] = total.get(verb, 0.0) + h
    if a.markdown:
        print("| table | pretraining | fine-tuning | features | total GPU-hours | all-reduce share |")
        print("|---|---:|---:|---:|---:|---:|")
        for table, h, c in rows:
            print("| %s | %.0f | %.0f | %.0f | %.0f | %.1f%% |" % (table, h["pretrain"], h["finetune"], h["features"],
                                                              sum(h.values()), 100 * c))
        print("| all four (shared jobs once) | %.0f | %.0f | %.0f | %.0f | |" % (
            total.get("pretrain", 0), total.get("finetune", 0), total.get("features", 0), sum(total.values())))
    else:
        for table, h, c in rows:
            print("%-16s pretrain %9.0f  finetune %7.0f  features %6.0f  total %9.0f GPU-hours  all-reduce %.1f%%" %
                  (table, h["pretrain"], h["finetune"], h["features"], sum(h.values()), 100 * c))
        print("%-16s total %9.0f GPU-hours (a job shared by tables counted once)" % ("all", sum(total.values())))


if __name__ == "__main__":
    sys.exit(main())
