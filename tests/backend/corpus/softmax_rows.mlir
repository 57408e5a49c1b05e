// Row softmax of a ($M, $N) matrix: a max-reduction, exp into a temporary
// (memref.alloc -> workspace), a sum-reduction, then the normalisation.
builtin.module {
  func.func @softmax(%x: memref<${M}x${N}x${T}>, %y: memref<${M}x${N}x${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %m = arith.constant ${M} : index
    %n = arith.constant ${N} : index
    %zero = arith.constant 0.0 : ${T}
    %neg_inf = arith.constant ${NEG_INF} : ${T}
    %e = memref.alloc() : memref<${N}x${T}>
    scf.for %i = %c0 to %m step %c1 {
      %mx = scf.for %j = %c0 to %n step %c1 iter_args(%acc = %neg_inf) -> (${T}) {
        %v = memref.load %x[%i, %j] : memref<${M}x${N}x${T}>
        %r = arith.maximumf %acc, %v : ${T}
        scf.yield %r : ${T}
      }
      %sum = scf.for %j = %c0 to %n step %c1 iter_args(%acc = %zero) -> (${T}) {
        %v = memref.load %x[%i, %j] : memref<${M}x${N}x${T}>
        %d = arith.subf %v, %mx : ${T}
        %ex = math.exp %d : ${T}
        memref.store %ex, %e[%j] : memref<${N}x${T}>
        %s = arith.addf %acc, %ex : ${T}
        scf.yield %s : ${T}
      }
      scf.for %j = %c0 to %n step %c1 {
        %ex = memref.load %e[%j] : memref<${N}x${T}>
        %q = arith.divf %ex, %sum : ${T}
        memref.store %q, %y[%i, %j] : memref<${M}x${N}x${T}>
      }
    }
    memref.dealloc %e : memref<${N}x${T}>
    func.return
  }
}
