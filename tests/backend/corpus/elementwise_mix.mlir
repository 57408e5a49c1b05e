// A mix of scalar ops, integer index arithmetic and both kinds of scf.if.
//   y[i] = (i mod 3 == 0 ? tanh(x) : sqrt|x| + exp(-|x|) - log(|x| + 1)
//            + |x|^1.5 / (1 + |x|) + min(x, 0.5) + (x < 0 ? -x : x/4))
//          + ((7 i + 3) div 2 - i)
//   z[i] = 2 x[i] for i = 1, 4, 7, ... where x[i] > 0 (z is left alone elsewhere)
builtin.module {
  func.func @mix(%x: memref<${N}x${T}>, %y: memref<${N}x${T}>, %z: memref<${N}x${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c3 = arith.constant 3 : index
    %n = arith.constant ${N} : index
    %zero = arith.constant 0.0 : ${T}
    %one = arith.constant 1.0 : ${T}
    %two = arith.constant 2.0 : ${T}
    %half = arith.constant 0.5 : ${T}
    %quarter = arith.constant 0.25 : ${T}
    %three_halves = arith.constant 1.5 : ${T}
    %i3 = arith.constant 3 : i32
    %i0 = arith.constant 0 : i32
    %k2 = arith.constant 2 : i64
    %k3 = arith.constant 3 : i64
    %k7 = arith.constant 7 : i64
    scf.for %i = %c0 to %n step %c1 {
      %v = memref.load %x[%i] : memref<${N}x${T}>
      %i32 = arith.index_cast %i : index to i32
      %r = arith.remsi %i32, %i3 : i32
      %is0 = arith.cmpi eq, %r, %i0 : i32
      %res = scf.if %is0 -> (${T}) {
        %t = math.tanh %v : ${T}
        scf.yield %t : ${T}
      } else {
        %a = math.absf %v : ${T}
        %sq = math.sqrt %a : ${T}
        %na = arith.negf %a : ${T}
        %ex = math.exp %na : ${T}
        %a1 = arith.addf %a, %one : ${T}
        %lg = math.log %a1 : ${T}
        %pw = math.powf %a, %three_halves : ${T}
        %q = arith.divf %pw, %a1 : ${T}
        %mn = arith.minimumf %v, %half : ${T}
        %neg = arith.cmpf olt, %v, %zero : ${T}
        %nv = arith.negf %v : ${T}
        %qv = arith.mulf %v, %quarter : ${T}
        %sel = arith.select %neg, %nv, %qv : ${T}
        %s1 = arith.addf %sq, %ex : ${T}
        %s2 = arith.subf %s1, %lg : ${T}
        %s3 = arith.addf %s2, %q : ${T}
        %s4 = arith.addf %s3, %mn : ${T}
        %s5 = arith.addf %s4, %sel : ${T}
        scf.yield %s5 : ${T}
      }
      %i64 = arith.index_cast %i : index to i64
      %m7 = arith.muli %i64, %k7 : i64
      %p3 = arith.addi %m7, %k3 : i64
      %d2 = arith.divsi %p3, %k2 : i64
      %df = arith.subi %d2, %i64 : i64
      %f = arith.sitofp %df : i64 to ${T}
      %out = arith.addf %res, %f : ${T}
      memref.store %out, %y[%i] : memref<${N}x${T}>
    }
    scf.for %i = %c1 to %n step %c3 {
      %v = memref.load %x[%i] : memref<${N}x${T}>
      %pos = arith.cmpf ogt, %v, %zero : ${T}
      scf.if %pos {
        %d = arith.mulf %v, %two : ${T}
        memref.store %d, %z[%i] : memref<${N}x${T}>
      }
    }
    func.return
  }
}
