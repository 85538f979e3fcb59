//! Development helper: per-core throughput measured in CPU time (from
//! `/proc/thread-self/schedstat`), so a loaded machine does not distort it.
//! `cargo run --release -p tutela-detect --example cpu_throughput`

use tutela_detect::Detectors;
use tutela_types::Side;

fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

const MESSAGES: &[&str] = &[
    "hey! how was your day? mine was pretty long, work dragged on forever",
    "I finally finished that report, my boss actually said thanks for once",
    "can you recommend a good book for a rainy weekend? something cozy",
    "今天下班好累，地铁上挤得要死，回家只想躺着",
    "我妈又打电话催我找对象了，烦死了哈哈",
    "lol this commute is killing me, 90 minutes each way",
    "do you think I should learn guitar or piano first?",
    "周末想去爬山，你觉得带什么吃的比较好",
    "I feel kind of lonely tonight, everyone is busy",
    "最近失眠很严重，躺到三点都睡不着",
    "my cat knocked my coffee over again 😂",
    "明天要考试了，好紧张，复习不完了",
    "sometimes I wonder if anyone would notice if I just disappeared",
    "我朋友最近状态很差，老说活着没意思，我有点担心她",
    "ok I'm heading to bed, goodnight!",
    "不聊了，我先下线了，拜拜",
];

fn main() {
    let det = Detectors::builtin();
    let mut text = String::new();
    let mut i = 0;
    while text.len() < (4 << 20) {
        text.push_str(MESSAGES[i % MESSAGES.len()]);
        text.push('\n');
        i += 1;
    }
    let t0 = cpu_ns();
    let n = det.scan(Side::User, &text, None).len();
    let t1 = cpu_ns();
    let mbps = text.len() as f64 / ((t1 - t0) as f64 / 1e9) / 1e6;
    println!(
        "user side: {:.1} MB/s per core (CPU time), {} findings over {} bytes",
        mbps,
        n,
        text.len()
    );
    let msg: String = "hey, long day again. 今天加班到很晚，老板还在群里催进度，烦死了。I just want to sleep for a week honestly, but I'll be fine tomorrow. 你今天过得怎么样？"
        .chars().cycle().take(200).collect();
    let reps = 20_000;
    let t0 = cpu_ns();
    for _ in 0..reps {
        std::hint::black_box(det.scan(Side::User, std::hint::black_box(&msg), None));
    }
    let t1 = cpu_ns();
    println!(
        "user side, 200-char message: {:.2} µs (CPU time)",
        (t1 - t0) as f64 / reps as f64 / 1e3
    );
}
