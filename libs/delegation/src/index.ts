// Room for the delegation library (issue [2]); nothing is exported yet.
export {};
