"""Planning: choose next week's discounts (a HiGHS mixed-integer program) and target customers."""
