//! The mixed English/Chinese chat corpus shared by the criterion bench and the CPU-time example.

/// Everyday companion-chat messages, mostly benign, some with cues, in both languages.
pub const MESSAGES: &[&str] = &[
    "hey! how was your day? mine was pretty long, work dragged on forever",
    "I finally finished that report, my boss actually said thanks for once",
    "can you recommend a good book for a rainy weekend? something cozy",
    "今天下班好累，地铁上挤得要死，回家只想躺着",
    "我妈又打电话催我找对象了，烦死了哈哈",
    "lol this commute is killing me, two trains and a bus each way",
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
    "just kill -9 the process and restart the server, that fixed it for me",
    "I died like five times on that boss fight, it's brutal",
    "我今年初二，作业真的太多了",
    "I can't sleep without talking to you first, is that weird?",
    "好想吃火锅啊，下次一起去吧（虽然你吃不了哈哈）",
    "what's a good way to ask my manager for a raise?",
    "today was honestly fine, nothing special, just tired",
    "我把这个app推荐给我闺蜜了，她也挺喜欢",
];
