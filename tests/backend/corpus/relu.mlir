// y = max(x, 0) over a ($M, $N) matrix; arith.maximumf propagates NaN like np.maximum.
builtin.module {
  func.func @relu(%x: memref<${M}x${N}x${T}>, %y: memref<${M}x${N}x${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %m = arith.constant ${M} : index
    %n = arith.constant ${N} : index
    %zero = arith.constant 0.0 : ${T}
    scf.for %i = %c0 to %m step %c1 {
      scf.for %j = %c0 to %n step %c1 {
        %v = memref.load %x[%i, %j] : memref<${M}x${N}x${T}>
        %r = arith.maximumf %v, %zero : ${T}
        memref.store %r, %y[%i, %j] : memref<${M}x${N}x${T}>
      }
    }
    func.return
  }
}
