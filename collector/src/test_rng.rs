//! A seeded xorshift64 generator for tests that walk many generated inputs: a fixed seed gives the
//! same inputs on every run, so a failing input reproduces.

pub(crate) struct XorShift(pub u64);

impl XorShift {
    /// The next state (the seed must not be 0).
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
